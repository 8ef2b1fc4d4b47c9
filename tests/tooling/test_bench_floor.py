"""The bench's one-transaction ceiling (tooling/bench/floor.py) behind its endpoint.

It writes its rows with the kernel's ordering code from plain values; these
check that its answers stay those of checkout for the same refusals, and
that a refused order writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.db import SessionFactory
from core.models import User
from core.settings import Settings
from tests.support.e2e import count_orders, order_body, stock_of
from tests.support.factories import auth_header, create_product, create_user
from tooling.bench.server import build_bench_app


@pytest.fixture
async def bench_api(
    settings: Settings, sessions: SessionFactory
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_bench_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def customer(sessions: SessionFactory) -> User:
    return await create_user(sessions)


async def _one_transaction(
    bench_api: httpx.AsyncClient, settings: Settings, customer: User, body: dict[str, object]
) -> httpx.Response:
    headers = {**auth_header(settings, customer), "Idempotency-Key": str(uuid.uuid4())}
    return await bench_api.post("/bench/one-transaction", json=body, headers=headers)


async def test_an_order_is_placed_and_confirmed_in_one_transaction(
    bench_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions, price=1250, stock=5)
    response = await _one_transaction(bench_api, settings, customer, order_body((product, 2)))
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    assert (response.json()["total"], response.json()["currency"]) == (2500, "USD")
    assert await stock_of(sessions, product.id) == 3


async def test_lines_the_catalog_refuses_are_the_checkouts_422(
    bench_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, customer: User
) -> None:
    gone = await create_product(sessions, active=False)
    body = order_body((uuid.uuid4(), 1), (gone, 1))
    response = await _one_transaction(bench_api, settings, customer, body)
    assert response.status_code == 422
    assert response.json()["type"] == "invalid-order"
    assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
        ("items[0].product_id", "unknown_product"),
        ("items[1].product_id", "product_not_for_sale"),
    ]
    assert await count_orders(sessions) == 0


async def test_a_line_without_its_stock_is_409_and_writes_nothing(
    bench_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions, stock=1)
    response = await _one_transaction(bench_api, settings, customer, order_body((product, 2)))
    assert response.status_code == 409
    assert response.json()["type"] == "out-of-stock"
    assert await count_orders(sessions) == 0
    assert await stock_of(sessions, product.id) == 1
