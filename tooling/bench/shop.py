"""The shop a bench run sells from: products, customers and their tokens, order bodies.

Everything a customer does goes through the real API: customers register and
log in at ``/auth`` and get real EdDSA tokens; an admin creates the products
at ``POST /products``. Only the admin itself is made directly in the
database, as ``ordersaga create-admin`` does, because no API call may create
the first admin.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from api.auth.accounts import create_or_promote_admin
from core.db import SessionFactory
from tooling.bench.processes import BenchError

ADMIN_EMAIL = "bench-admin@ordersaga.dev"
PAYMENT_TOKEN = "tok_visa"  # the simulator captures it, every time
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}
# Two lines per order, as the saga's measured shape in shared/NOTES.md.
LINE_QUANTITIES = (1, 2)


@dataclass(frozen=True)
class ShopProduct:
    id: str
    sku: str
    price: int  # minor units
    stock: int  # at creation


@dataclass(frozen=True)
class Shop:
    products: tuple[ShopProduct, ...]
    tokens: tuple[str, ...]  # one bearer token per customer

    def headers(self, i: int) -> dict[str, str]:
        """Request ``i`` is made by customer ``i mod customers``."""
        return {"Authorization": f"Bearer {self.tokens[i % len(self.tokens)]}"}

    def order_body(self, i: int) -> dict[str, Any]:
        """Request ``i`` buys two neighbouring products, so load spreads over the catalog."""
        count = len(self.products)
        lines = [
            {"product_id": self.products[(i + n) % count].id, "quantity": quantity}
            for n, quantity in enumerate(LINE_QUANTITIES)
        ]
        return {
            "items": lines,
            "payment": {"token": PAYMENT_TOKEN},
            "shipping_address": dict(ADDRESS),
        }


def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        # The body is the API's problem document: never a password or a token.
        raise BenchError(f"{what} failed: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def _login(api: httpx.AsyncClient, email: str, password: str) -> str:
    answer = _ok(
        await api.post("/auth/login", json={"email": email, "password": password}), "login"
    )
    token: str = answer["access_token"]
    return token


async def open_shop(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    *,
    customers: int,
    products: int,
    stock: int,
) -> Shop:
    """Create the admin, the products and the customers; log everyone in."""
    # Fresh random passwords: they exist only for this run and are never shown.
    admin_password = secrets.token_urlsafe(16)
    await create_or_promote_admin(sessions, ADMIN_EMAIL, admin_password)
    admin = {"Authorization": f"Bearer {await _login(api, ADMIN_EMAIL, admin_password)}"}
    made: list[ShopProduct] = []
    for n in range(products):
        price = 1250 + 100 * n
        sku = f"BENCH-{n:03d}"
        body = {
            "sku": sku,
            "name": f"Bench item {n}",
            "category": "bench",
            "price": price,
            "currency": "USD",
            "stock": stock,
        }
        answer = _ok(await api.post("/products", json=body, headers=admin), "creating a product")
        made.append(ShopProduct(str(answer["id"]), sku, price, stock))
    tokens: list[str] = []
    for n in range(customers):
        email = f"bench-customer-{n}@example.com"
        password = secrets.token_urlsafe(16)
        account = {"email": email, "password": password, "name": f"Bench Customer {n}"}
        _ok(await api.post("/auth/register", json=account), "registering a customer")
        tokens.append(await _login(api, email, password))
    return Shop(tuple(made), tuple(tokens))
