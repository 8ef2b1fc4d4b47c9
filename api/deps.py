"""FastAPI dependencies, as ``Annotated`` aliases routes declare by type.

Every dependency in ``api/`` is ``async def``, even one that only reads a
header: FastAPI runs a plain ``def`` dependency in a thread pool, and those
hand-offs (six per checkout) cost more than the work they do. None of them
blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.app import Resources
from api.errors import ProblemError
from api.tokens import InvalidToken, Principal
from core.settings import Settings


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

# auto_error=False: a missing token is answered by us, in the problem shape.
_bearer = HTTPBearer(auto_error=False)


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def current_principal(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(
            401,
            "a Bearer token is required",
            code="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return await resources.verifier.verify(credentials.credentials)
    except InvalidToken as err:
        raise _unauthorized(str(err)) from err


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise ProblemError(403, "this action needs the admin role", code="forbidden")
    return principal


AdminUser = Annotated[Principal, Depends(require_admin)]


async def get_temporal(resources: ResourcesDep) -> Client:
    if resources.temporal is None:
        raise ProblemError(
            503,
            "the order service cannot reach Temporal right now; try again shortly",
            code="temporal-unavailable",
            headers={"Retry-After": "5"},
        )
    return resources.temporal


TemporalClient = Annotated[Client, Depends(get_temporal)]


async def get_optional_temporal(resources: ResourcesDep) -> Client | None:
    # For reads that still answer without Temporal (the dashboard, an order's
    # page): None while it is unreachable, where TemporalClient answers 503.
    return resources.temporal


OptionalTemporal = Annotated[Client | None, Depends(get_optional_temporal)]
