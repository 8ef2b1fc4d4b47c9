"""Who may open the console: a logged-in admin; a customer gets a 403 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.errors import ProblemError
from api.tokens import Principal
from api.web.session import PageUser


async def page_admin(user: PageUser) -> Principal:
    if not user.is_admin:
        # A page for browsers (api/web/errors.py), problem+json for the rest.
        raise ProblemError(403, "admins only", code="forbidden")
    return user


PageAdmin = Annotated[Principal, Depends(page_admin)]
