"""The shop's cookie session: an HttpOnly, SameSite=Lax cookie carrying the user's access token.

The cookie holds the same signed token the REST API issues, verified by the
same ``TokenVerifier`` (so logout's denylist and a password change revoke it
exactly as they revoke a Bearer token). JavaScript never sees it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import ResourcesDep
from api.tokens import InvalidToken, Principal
from core.settings import Settings

SESSION_COOKIE = "ordersaga_session"


class LoginRequired(Exception):
    """A page needs a logged-in customer; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything else (another site) goes home."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_url(next_path: str) -> str:
    return "/shop/login?next=" + quote(safe_next(next_path), safe="/")


async def optional_page_user(request: Request, resources: ResourcesDep) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return await resources.verifier.verify(token)
    except InvalidToken:
        # Expired, revoked or forged: the visitor is simply not logged in.
        return None


PageVisitor = Annotated[Principal | None, Depends(optional_page_user)]


async def page_user(request: Request, visitor: PageVisitor) -> Principal:
    if visitor is None:
        raise LoginRequired(request.url.path)
    return visitor


PageUser = Annotated[Principal, Depends(page_user)]


def set_session(response: Response, settings: Settings, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        # Plain HTTP only in dev mode (http://127.0.0.1:8000).
        secure=not settings.is_dev,
    )


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=not settings.is_dev
    )
