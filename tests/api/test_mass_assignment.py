"""Mass assignment: no write body can set what the server decides.

Every JSON write route refuses a field it does not take, with a 422 whose
error is ``extra_forbidden`` at that field (or, when the key is not a name
the app uses itself, at its parent: a client's own text is never sent back),
and writes nothing: prices and totals come from the
catalog, status and refunds from the saga, the owner from the token, roles
from an admin command, ids from the database. The routes are read from the
OpenAPI document, so a new write route fails here until it is listed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from api.main import create_app
from core.db import SessionFactory
from core.models import CartItem, Role
from core.settings import Settings
from tests.api.test_access_control import snapshot
from tests.support import order_factory
from tests.support.e2e import api_client, order_body
from tests.support.factories import DEFAULT_PASSWORD, auth_header, create_product, create_user


@dataclass
class Ids:
    order: str
    product: str


@dataclass(frozen=True)
class WriteRoute:
    method: str
    path: str
    who: str  # "customer" or "admin"
    body: dict[str, Any]
    # Fields a client must never set here: dotted paths into the body.
    forbidden: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


SERVER_DECIDES_ORDER = (
    "id",
    "status",
    "total",
    "price",
    "currency",
    "customer_id",
    "user_id",
    "owner",
    "refunded_amount",
    "needs_attention",
    "created_at",
    "items.0.unit_price",
    "items.0.price",
    "items.0.sku",
    "payment.amount",
    "payment.status",
    "payment.refunded_amount",
    "shipping_address.customer_id",
)
SERVER_DECIDES_CHANGE = ("status", "refunded_amount", "customer_id", "requested_by", "total")
SERVER_DECIDES_USER = ("id", "role", "token_version", "password_hash", "is_admin")


def write_routes(product_id: str) -> list[WriteRoute]:
    new_user = {"email": "new@example.com", "password": "long-enough-pass", "name": "N"}
    return [
        WriteRoute("POST", "/auth/register", "anonymous", new_user, SERVER_DECIDES_USER),
        WriteRoute(
            "POST",
            "/auth/login",
            "anonymous",
            {"email": "customer@example.com", "password": DEFAULT_PASSWORD},
            ("role", "expires_in", "aud"),
        ),
        WriteRoute(
            "PATCH", "/users/me", "customer", {"name": "Renamed"}, (*SERVER_DECIDES_USER, "email")
        ),
        WriteRoute(
            "POST",
            "/auth/password-reset",
            "anonymous",
            {"email": "customer@example.com"},
            ("user_id", "token", "expires_at"),
        ),
        # The control body's token is unknown: a 404, not a 422.
        WriteRoute(
            "POST",
            "/auth/password-reset/confirm",
            "anonymous",
            {"token": "u" * 43, "new_password": "another-long-pass"},
            ("user_id", "email", "token_version", "expires_at"),
        ),
        WriteRoute(
            "POST",
            "/auth/verify-email",
            "anonymous",
            {"token": "u" * 43},
            ("user_id", "email", "email_verified", "email_verified_at"),
        ),
        WriteRoute(
            "POST",
            "/users/me/password",
            "customer",
            {"current_password": DEFAULT_PASSWORD, "new_password": "another-long-pass"},
            ("role", "token_version", "email"),
        ),
        WriteRoute(
            "POST", "/orders", "customer", order_body((product_id, 1)), SERVER_DECIDES_ORDER
        ),
        WriteRoute(
            "POST",
            "/orders/{order_id}/cancel",
            "customer",
            {"reason": "changed my mind"},
            SERVER_DECIDES_CHANGE,
        ),
        WriteRoute(
            "POST",
            "/orders/{order_id}/ship",
            "admin",
            {"carrier": "DHL", "tracking_number": "JD0001"},
            (*SERVER_DECIDES_CHANGE, "shipped_at"),
        ),
        WriteRoute(
            "POST",
            "/products",
            "admin",
            {"sku": "NEW-1", "name": "New", "category": "c", "price": 100, "currency": "USD"},
            ("id", "reserved", "created_at"),
        ),
        WriteRoute(
            "PUT",
            "/cart/items/{product_id}",
            "customer",
            {"quantity": 1},
            ("price", "unit_price", "currency", "price_when_added", "available", "user_id"),
        ),
        WriteRoute(
            "POST",
            "/cart/checkout",
            "customer",
            {k: v for k, v in order_body((product_id, 1)).items() if k != "items"},
            ("items", *SERVER_DECIDES_ORDER[1:5], "customer_id", "payment.amount"),
        ),
        # sku and currency are fixed once a product exists: past orders and
        # the stock ledger refer to them.
        WriteRoute(
            "PATCH",
            "/products/{product_id}",
            "admin",
            {"name": "Renamed"},
            ("id", "sku", "currency", "reserved"),
        ),
    ]


def with_field(body: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """``body`` with ``dotted`` set, and the field name of its path (items[0].unit_price)."""
    body = _copy(body)
    *parents, leaf = dotted.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[leaf] = 1 if leaf in {"total", "price", "unit_price", "amount"} else "x"
    # errors name fields as items[0].unit_price.
    name = ""
    for part in dotted.split("."):
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return body, name


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def test_every_json_write_route_is_listed(settings: Settings) -> None:
    listed = {route.label for route in write_routes(str(uuid.uuid4()))}
    documented = {
        f"{method.upper()} {path}"
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert documented == listed


@dataclass
class Caller:
    api: httpx.AsyncClient
    headers: dict[str, dict[str, str]]
    ids: Ids

    async def send(self, route: WriteRoute, body: dict[str, Any]) -> httpx.Response:
        headers = dict(self.headers[route.who])
        if route.label in ("POST /orders", "POST /cart/checkout"):
            headers["Idempotency-Key"] = str(uuid.uuid4())
        path = route.path.format(order_id=self.ids.order, product_id=self.ids.product)
        return await self.api.request(route.method, path, json=body, headers=headers)


@pytest.fixture
async def client(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, task_queue: str
) -> AsyncIterator[Caller]:
    customer = await create_user(sessions, email="customer@example.com")
    admin = await create_user(sessions, role=Role.ADMIN)
    product = await create_product(sessions, price=1250)
    order = await order_factory.create_order(sessions, customer=customer, lines=[(product, 1)])
    # Something to check out, so the control request of POST /cart/checkout is no 422.
    async with sessions() as session, session.begin():
        session.add(
            CartItem(
                user_id=customer.id,
                product_id=product.id,
                quantity=1,
                price_seen=1250,
                currency_seen="USD",
            )
        )
    app_settings = settings.model_copy(update={"task_queue": task_queue})
    async with api_client(app_settings, temporal_client) as api:
        yield Caller(
            api,
            {
                "anonymous": {},
                "customer": auth_header(settings, customer),
                "admin": auth_header(settings, admin),
            },
            Ids(str(order.id), str(product.id)),
        )


ROUTES = write_routes("{product_id}")


@pytest.mark.parametrize("route", ROUTES, ids=[r.label for r in ROUTES])
async def test_server_decided_fields_are_refused_by_name_and_change_nothing(
    client: Caller, sessions: SessionFactory, route: WriteRoute
) -> None:
    base = _copy(route.body)
    if route.label == "POST /orders":
        base = order_body((client.ids.product, 1))
    before = await snapshot(sessions)
    for dotted in route.forbidden:
        body, name = with_field(base, dotted)
        response = await client.send(route, body)
        assert response.status_code == 422, (route.label, dotted, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        refused = {e["field"] for e in response.json()["errors"] if e["type"] == "extra_forbidden"}
        parent = name.rsplit(".", 1)[0] if "." in name else "body"
        assert refused & {name, parent}, (route.label, dotted, response.text)
    assert await snapshot(sessions) == before

    # The control: the same body without the field is not refused, so the
    # 422s above were about the field alone.
    response = await client.send(route, base)
    assert response.status_code != 422, (route.label, response.text)
