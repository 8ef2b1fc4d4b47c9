"""The main API: catalog, orders and admin, with the auth routes mounted in dev."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from temporalio.client import Client

from api import admin, auth, catalog, health, orders
from api.app import build_app
from core.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, *, temporal_client: Client | None = None
) -> FastAPI:
    settings = settings or get_settings()
    routers: list[APIRouter] = [health.router, catalog.router, orders.router, admin.router]
    if settings.serve_auth:
        routers += auth.routers
    return build_app(
        title="ordersaga",
        settings=settings,
        routers=routers,
        use_temporal=True,
        temporal_client=temporal_client,
    )
