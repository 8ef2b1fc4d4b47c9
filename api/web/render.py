"""Rendering a shop page: Jinja2 with autoescaping, money formatted from minor units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth.passwords import MIN_LENGTH
from api.cart_store import read_cart
from api.tokens import Principal
from api.web.csrf import form_token, remember_secret
from core.models import OrderStatus
from core.money import Money

TEMPLATES = Path(__file__).parent / "templates"

STATUS_LABELS = {
    OrderStatus.PENDING.value: "Pending",
    OrderStatus.CONFIRMED.value: "Confirmed",
    OrderStatus.SHIPPED.value: "Shipped",
    OrderStatus.DELIVERED.value: "Delivered",
    OrderStatus.REJECTED.value: "Rejected",
    OrderStatus.PAYMENT_FAILED.value: "Payment failed",
    OrderStatus.CANCELLED.value: "Cancelled",
}


def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # Every template is HTML: escape everything, whatever its file name.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = money
    env.globals["password_min"] = MIN_LENGTH
    env.filters["status_label"] = lambda status: STATUS_LABELS.get(status, status)
    return env


templates = Jinja2Templates(env=_environment())


async def render(
    request: Request,
    template: str,
    visitor: Principal | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    resources = request.app.state.resources
    cart_count = None
    if visitor is not None:
        cart_count = (await read_cart(resources.sessions, visitor.user_id)).count
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": visitor,
            "cart_count": cart_count,
            "csrf_token": form_token(request),
            **context,
        },
        status_code=status_code,
    )
    remember_secret(request, response, resources.settings)
    response.headers["Cache-Control"] = "no-store"
    return response
