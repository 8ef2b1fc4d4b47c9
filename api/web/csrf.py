"""CSRF protection for every form the shop posts: a synchronizer token, checked in one place.

Each browser holds a random secret in an HttpOnly cookie. A form carries
``HMAC(secret, session)``, so its token is bound to that browser and to the
session it was rendered for: another site can neither read it nor make one.
Every form route is on a router whose dependency ``require_csrf`` checks it;
a post without a valid token is refused with 403 before the route runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from api.web.session import SESSION_COOKIE
from core.settings import Settings

CSRF_COOKIE = "ordersaga_csrf"
FIELD = "csrf_token"
_NEW_SECRET = "ordersaga.new_csrf_secret"


class CsrfRefused(Exception):
    """A form was posted without a valid CSRF token."""


def _token(secret: str, session: str) -> str:
    bound_to = hashlib.sha256(session.encode()).hexdigest()
    return hmac.new(secret.encode(), bound_to.encode(), hashlib.sha256).hexdigest()


def browser_secret(request: Request) -> str:
    """This browser's secret: from its cookie, or a new one ``remember_secret`` will set."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing:
        return existing
    # Kept in this request's scope (request.state can be shared with the
    # app's lifespan state, so it would leak one secret to every visitor).
    fresh: str | None = request.scope.get(_NEW_SECRET)
    if fresh is None:
        fresh = request.scope[_NEW_SECRET] = secrets.token_urlsafe(32)
    return fresh


def form_token(request: Request, session: str | None = None) -> str:
    """The token this request's forms carry (``session``: the cookie about to be set)."""
    if session is None:
        session = request.cookies.get(SESSION_COOKIE, "")
    return _token(browser_secret(request), session)


def remember_secret(request: Request, response: Response, settings: Settings) -> None:
    fresh = request.scope.get(_NEW_SECRET)
    if fresh is not None:
        set_secret(response, settings, fresh)


def set_secret(response: Response, settings: Settings, secret: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        secret,
        path="/",
        httponly=True,
        samesite="lax",
        secure=not settings.is_dev,
    )


async def require_csrf(request: Request) -> None:
    """The one CSRF check, run before every form route (a router dependency)."""
    secret = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent = form.get(FIELD)
    expected = _token(secret, request.cookies.get(SESSION_COOKIE, "")) if secret else None
    if expected is None or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfRefused
