"""The standalone auth service app (``ordersaga auth``). It never uses Temporal."""

from __future__ import annotations

from fastapi import FastAPI

from api import health
from api.app import build_app
from api.auth import routers
from core.settings import Settings


def create_auth_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        title="ordersaga auth",
        settings=settings,
        routers=[health.router, *routers],
        use_temporal=False,
    )
