"""The main API: catalog, cart, orders and admin, the shop pages, and the auth routes in dev."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from temporalio.client import Client

from api import (
    admin,
    admin_orders,
    auth,
    cart,
    catalog,
    dashboard,
    health,
    orders,
    product_images,
)
from api.app import build_app
from api.web import BODY_LIMITS, install_web
from core.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, *, temporal_client: Client | None = None
) -> FastAPI:
    settings = settings or get_settings()
    routers: list[APIRouter] = [
        health.router,
        catalog.router,
        product_images.router,
        cart.router,
        orders.router,
        admin.router,
        admin_orders.router,
        dashboard.router,
    ]
    if settings.serve_auth:
        routers += auth.routers
    app = build_app(
        title="ordersaga",
        settings=settings,
        routers=routers,
        use_temporal=True,
        temporal_client=temporal_client,
        body_limits=(product_images.BODY_LIMIT, *BODY_LIMITS),
    )
    install_web(app)
    return app
