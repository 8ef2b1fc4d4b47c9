"""Liveness and readiness, for people and for Kubernetes probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ResourcesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(request: Request, resources: ResourcesDep) -> Any:
    """The database is reachable, and Temporal too where this app uses it."""
    # The auth service never talks to Temporal: its readiness is the database
    # alone, and it must not claim a Temporal check it never made.
    uses_temporal = bool(request.app.state.use_temporal) or resources.temporal is not None
    down: dict[str, str] = {}
    try:
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as err:  # any failure means "not ready"
        down["database"] = f"unreachable: {type(err).__name__}"
    if uses_temporal:
        if resources.temporal_error is not None:
            down["temporal"] = resources.temporal_error
        elif resources.temporal is not None:
            try:
                await resources.temporal.service_client.check_health()
            except Exception as err:  # any failure means "not ready"
                down["temporal"] = f"unreachable: {type(err).__name__}"
    if down:
        names = ", ".join(sorted(down))
        return JSONResponse(
            {
                "type": "not-ready",
                "title": "Service Unavailable",
                "status": 503,
                "detail": f"not ready: {names} down",
                "checks": down,
            },
            status_code=503,
            media_type="application/problem+json",
        )
    checks = {"database": "ok", "temporal": "ok"} if uses_temporal else {"database": "ok"}
    return {"status": "ready", "checks": checks}
