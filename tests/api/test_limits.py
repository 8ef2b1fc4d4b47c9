"""Resource limits: body size, order size, page size and the checkout rate.

- Every route that takes a body answers 413 to one over 1 MiB, declared or
  streamed without a length, before authentication and without writing;
  PUT /products/{id}/image alone takes up to 2 MiB (an image), and 413 over.
- An order has at most 50 lines of at most 100 units each (422 naming the
  field beyond that); exactly 50 lines of 100 units are accepted.
- Every list route serves at most 100 items per page, whatever is asked.
- Each user may check out ``checkout_rate_limit`` times per window; beyond
  that POST /orders answers 429 with Retry-After, and nothing is written.

Login throttling (5 failures in 15 minutes: 429 with Retry-After) is proven
in tests/api/test_auth_throttle.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from temporalio.client import Client

from api.images import MAX_IMAGE_BYTES
from api.main import create_app
from api.pagination import MAX_LIMIT
from api.ratelimit import TokenBucketLimiter
from api.schemas.orders import MAX_LINES, MAX_QUANTITY
from core.db import SessionFactory
from core.models import CaughtMail, Order, Product, Role, User
from core.settings import Settings
from tests.api.test_access_control import snapshot
from tests.support.e2e import ADDRESS, api_client, checkout, count_orders, order_body
from tests.support.factories import auth_header, create_product, create_user

ONE_MIB = 1024 * 1024


@pytest.fixture
def limited_settings(settings: Settings, task_queue: str) -> Settings:
    return settings.model_copy(
        update={
            "task_queue": task_queue,
            "checkout_rate_limit": 3,
            "checkout_rate_window_seconds": 60,
        }
    )


@pytest.fixture
async def orders_api(
    limited_settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(limited_settings, temporal_client) as client:
        yield client


@pytest.fixture
async def customer(sessions: SessionFactory) -> User:
    return await create_user(sessions)


@pytest.fixture
def headers(settings: Settings, customer: User) -> dict[str, str]:
    return auth_header(settings, customer)


@pytest.fixture
async def admin_headers(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


def _fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


# --- body size ------------------------------------------------------------------


# The routes allowed a larger body than the app's 1 MiB, with their limit.
LARGER_BODIES = {("PUT", "/products/{product_id}/image"): MAX_IMAGE_BYTES}


def _body_routes(settings: Settings) -> list[tuple[str, str, str, int]]:
    """(method, path, media type, body limit) of every operation that takes a body."""
    paths = create_app(settings).openapi()["paths"]
    ids = {"{order_id}": str(uuid.uuid4()), "{product_id}": str(uuid.uuid4())}
    routes = []
    for template, operations in paths.items():
        path = template
        for name, value in ids.items():
            path = path.replace(name, value)
        for method, operation in operations.items():
            limit = LARGER_BODIES.get((method.upper(), template), ONE_MIB)
            for media_type in operation.get("requestBody", {}).get("content", {}):
                routes.append((method.upper(), path, media_type, limit))
    return sorted(routes)


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = min(size, total - sent)
        sent += chunk
        yield b" " * chunk


async def test_every_body_over_one_mib_is_413_declared_or_streamed(
    orders_api: httpx.AsyncClient,
    limited_settings: Settings,
    sessions: SessionFactory,
    admin_headers: dict[str, str],
) -> None:
    routes = _body_routes(limited_settings)
    assert {("POST", "/orders"), ("POST", "/auth/token")} <= {(m, p) for m, p, _, _ in routes}
    assert {limit for _, path, _, limit in routes if path.endswith("/image")} == {MAX_IMAGE_BYTES}
    before = await snapshot(sessions)
    for method, path, media_type, limit in routes:
        for headers in ({}, admin_headers):  # refused before the token is even read
            declared = await orders_api.request(
                method,
                path,
                content=b" " * (limit + 1),
                headers={**headers, "content-type": media_type},
            )
            streamed = orders_api.build_request(
                method,
                path,
                content=_chunks(limit + ONE_MIB),
                headers={**headers, "content-type": media_type},
            )
            assert "content-length" not in streamed.headers
            for response in (declared, await orders_api.send(streamed)):
                assert response.status_code == 413, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["type"] == "body-too-large"
    assert await snapshot(sessions) == before


# --- order size -------------------------------------------------------------------


async def test_the_largest_order_allowed_is_accepted(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    products = [await create_product(sessions, stock=1000) for _ in range(MAX_LINES)]
    response = await checkout(
        orders_api, headers, order_body(*[(p, MAX_QUANTITY) for p in products])
    )
    assert response.status_code == 202, response.text
    assert len(response.json()["items"]) == MAX_LINES


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (MAX_LINES + 1, "items"),
        (1000, "items"),  # refused by count, not priced line by line
    ],
)
async def test_too_many_lines_are_422(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    lines: int,
    field: str,
) -> None:
    body = order_body(*[(uuid.uuid4(), 1) for _ in range(lines)])
    response = await checkout(orders_api, headers, body)
    assert response.status_code == 422
    assert field in _fields(response)
    assert await count_orders(sessions) == 0


@pytest.mark.parametrize("quantity", [MAX_QUANTITY + 1, 10**9, 0, -1])
async def test_quantities_out_of_bounds_are_422(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory, quantity: int
) -> None:
    product = await create_product(sessions, stock=10**6)
    response = await checkout(orders_api, headers, order_body((product, quantity)))
    assert response.status_code == 422
    assert _fields(response) == {"items[0].quantity"}
    assert await count_orders(sessions) == 0


# --- page size ----------------------------------------------------------------------


async def _fill(sessions: SessionFactory, owner: User, n: int) -> None:
    """``n`` products, orders of ``owner`` and caught mails, in three inserts."""
    async with sessions() as session, session.begin():
        await session.execute(
            insert(Product),
            [
                {
                    "sku": f"PAGE-{i:04d}",
                    "name": f"Product {i:04d}",
                    "description": "",
                    "category": "paging",
                    "price": 100,
                    "currency": "USD",
                    "stock": 1,
                    "active": True,
                }
                for i in range(n)
            ],
        )
        await session.execute(
            insert(Order),
            [
                {
                    "customer_id": owner.id,
                    "currency": "USD",
                    "total": 100,
                    "shipping_address": ADDRESS,
                    "idempotency_key": f"page-{i}",
                    "request_fingerprint": "0" * 64,
                }
                for i in range(n)
            ],
        )
        await session.execute(
            insert(CaughtMail),
            [
                {"mail_from": "a@example.com", "rcpt_to": "b@example.com", "body": "hi"}
                for _ in range(n)
            ],
        )


async def test_every_list_route_caps_its_page_at_100(
    orders_api: httpx.AsyncClient,
    limited_settings: Settings,
    sessions: SessionFactory,
    settings: Settings,
) -> None:
    admin = await create_user(sessions, role=Role.ADMIN)
    await _fill(sessions, admin, MAX_LIMIT + 5)
    paths = create_app(limited_settings).openapi()["paths"]
    list_routes = sorted(
        path
        for path, operations in paths.items()
        if any(p["name"] == "limit" for p in operations.get("get", {}).get("parameters", []))
    )
    assert list_routes == ["/admin/mail", "/admin/orders", "/orders", "/products"]
    headers = auth_header(settings, admin)
    for path in list_routes:
        for limit in (MAX_LIMIT + 1, 10**6):
            page = await orders_api.get(path, params={"limit": limit}, headers=headers)
            assert page.status_code == 200, (path, page.text)
            assert len(page.json()["items"]) == MAX_LIMIT, path
            assert page.json()["total"] == MAX_LIMIT + 5, path
        default = await orders_api.get(path, headers=headers)
        assert len(default.json()["items"]) == 20, path
        for bad in (0, -1, "many"):
            refused = await orders_api.get(path, params={"limit": bad}, headers=headers)
            assert refused.status_code == 422, (path, bad)
            assert _fields(refused) == {"limit"}


# --- checkout rate ---------------------------------------------------------------------


async def test_checkouts_beyond_the_rate_are_429_with_retry_after(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    settings: Settings,
) -> None:
    product = await create_product(sessions, stock=100)
    for _ in range(3):
        placed = await checkout(orders_api, headers, order_body((product, 1)))
        assert placed.status_code == 202, placed.text

    refused = await checkout(orders_api, headers, order_body((product, 1)))

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "rate-limited"
    # One token comes back every 60 / 3 = 20 seconds.
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert await count_orders(sessions) == 3
    # The limit is per user: someone else checks out at once.
    other = auth_header(settings, await create_user(sessions))
    assert (await checkout(orders_api, other, order_body((product, 1)))).status_code == 202


async def test_the_rate_limit_counts_attempts_not_only_orders(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    # Refused checkouts cost the server too, so they use up the allowance.
    for _ in range(3):
        bad = await checkout(orders_api, headers, order_body((uuid.uuid4(), 1)))
        assert bad.status_code == 422
    product = await create_product(sessions)
    refused = await checkout(orders_api, headers, order_body((product, 1)))
    assert refused.status_code == 429
    assert await count_orders(sessions) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limiter(
    capacity: int = 3, window: float = 60, **kwargs: Any
) -> tuple[TokenBucketLimiter, FakeClock]:
    clock = FakeClock()
    return TokenBucketLimiter(capacity, window, clock=clock, **kwargs), clock


def test_bucket_allows_a_burst_then_refills_one_token_per_interval() -> None:
    limiter, clock = _limiter()
    assert [limiter.acquire("u") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("u") == 20
    clock.now += 19.5
    assert limiter.acquire("u") == 1  # rounded up, never 0
    clock.now += 0.5
    assert limiter.acquire("u") is None
    assert limiter.acquire("u") == 20


def test_bucket_never_holds_more_than_its_capacity() -> None:
    limiter, clock = _limiter()
    clock.now += 3600  # a long quiet spell does not bank a bigger burst
    assert [limiter.acquire("u") for _ in range(4)] == [None, None, None, 20]


def test_buckets_are_per_key_and_bounded() -> None:
    limiter, _ = _limiter(capacity=1, max_keys=2)
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    assert limiter.acquire("b") is None
    assert limiter.acquire("c") is None  # evicts "a", the least recently seen
    assert limiter.acquire("a") is None


def test_a_zero_limit_turns_the_limit_off() -> None:
    limiter, _ = _limiter(capacity=0)
    assert all(limiter.acquire("u") is None for _ in range(100))


def test_the_default_is_30_checkouts_a_minute() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.checkout_rate_limit, defaults.checkout_rate_window_seconds) == (30, 60)
