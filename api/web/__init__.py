"""The storefront: server-rendered shop pages served by the API process at ``/``.

Pages are thin: each reads the cookie session, calls the same domain code as
the REST routes (catalog, cart, checkout, orders, auth) and renders one
template. Form posts are CSRF-checked in one place (``csrf.require_csrf``),
pages carry a Content-Security-Policy without inline script, and errors are
pages for browsers while JSON clients keep problem+json.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.body_limit import RouteBodyLimit
from api.web import account_pages, cart_pages, catalog_pages, order_pages, recovery_pages
from api.web.console import (
    dashboard_pages,
    mail_pages,
    order_detail,
    order_forms,
    orders_pages,
    product_actions,
    product_pages,
)
from api.web.errors import install_html_errors
from api.web.headers import SecurityHeaders

STATIC = Path(__file__).parent / "static"

# Pages whose forms carry an image, allowed a larger body than the app's.
BODY_LIMITS: tuple[RouteBodyLimit, ...] = product_actions.BODY_LIMITS


def install_web(app: FastAPI) -> None:
    app.mount("/static/shop", StaticFiles(directory=STATIC), name="shop-static")
    for module in (
        catalog_pages,
        account_pages,
        recovery_pages,
        cart_pages,
        order_pages,
        mail_pages,
        dashboard_pages,
        orders_pages,
        order_detail,
        order_forms,
        product_pages,
        product_actions,
    ):
        # A module serves pages (``router``), form posts (``forms``, CSRF-checked) or both.
        for name in ("router", "forms"):
            routes = getattr(module, name, None)
            if routes is not None:
                app.include_router(routes)
    install_html_errors(app)
    app.add_middleware(SecurityHeaders)
