"""Helpers for the orders API tests: the app on a real Temporal, the real worker, DB probes.

- ``api_client`` runs the main API in-process with a Temporal client handed in
  (the conftest ``api`` fixture has none).
- ``running_worker`` runs the real worker (real activities, the payment
  simulator, a local SMTP sink storing mail in ``caught_mail``) in-process on
  the test's task queue against the dev server and PostgreSQL.
- The ``*_of`` functions read what the database holds, so tests assert on
  stock and money where they live rather than on what the API says.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update
from temporalio.client import Client

from core.db import SessionFactory, create_engine, create_session_factory
from core.models import (
    Order,
    OrderStatus,
    Payment,
    Product,
    SimulatorCharge,
    SimulatorRefund,
)
from core.settings import Settings
from tooling.smtp_sink import start_smtp_sink
from worker.main import build_worker

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def api_client(settings: Settings, temporal: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The main API in-process, using ``temporal`` as its Temporal client."""
    from api.main import create_app

    app = create_app(settings, temporal_client=temporal)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@asynccontextmanager
async def api_with_worker(
    settings: Settings, sessions: SessionFactory, temporal: Client
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process and the real worker on ``settings.task_queue``, sharing ``sessions``."""
    async with build_worker(temporal, settings, sessions), api_client(settings, temporal) as api:
        yield api


def order_body(*lines: tuple[Any, int], token: str = "tok_visa", **extra: Any) -> dict[str, Any]:
    """A POST /orders body for (product or product id, quantity) lines."""
    return {
        "items": [
            {"product_id": str(getattr(p, "id", p)), "quantity": quantity} for p, quantity in lines
        ],
        "payment": {"token": token},
        "shipping_address": dict(ADDRESS),
        **extra,
    }


async def checkout(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    key: str | None = None,
    wait: int | None = None,
) -> httpx.Response:
    request_headers = {**headers, "Idempotency-Key": key or str(uuid.uuid4())}
    if wait is not None:
        request_headers["Prefer"] = f"wait={wait}"
    return await api.post("/orders", json=body, headers=request_headers)


async def stock_of(sessions: SessionFactory, product_id: uuid.UUID) -> int:
    async with sessions() as session:
        stock = await session.scalar(select(Product.stock).where(Product.id == product_id))
        assert stock is not None
        return stock


async def payment_of(sessions: SessionFactory, order_id: uuid.UUID | str) -> Payment:
    async with sessions() as session:
        payment = await session.get(Payment, uuid.UUID(str(order_id)))
        assert payment is not None
        return payment


async def count_orders(sessions: SessionFactory) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Order)) or 0


async def simulator_charges(sessions: SessionFactory) -> list[SimulatorCharge]:
    async with sessions() as session:
        return list(await session.scalars(select(SimulatorCharge)))


async def simulator_refunds(sessions: SessionFactory) -> list[SimulatorRefund]:
    async with sessions() as session:
        return list(await session.scalars(select(SimulatorRefund)))


async def set_status(sessions: SessionFactory, order_id: uuid.UUID, status: OrderStatus) -> None:
    """Move an order's read model directly (for tests that need no saga)."""
    async with sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order_id).values(status=status))


@dataclass
class Stack:
    """The API and a real worker sharing one task queue, dev server and database."""

    api: httpx.AsyncClient
    settings: Settings
    sessions: SessionFactory
    temporal: Client


@asynccontextmanager
async def running_stack(
    settings: Settings, temporal: Client, database_url: str
) -> AsyncIterator[Stack]:
    """The real worker (activities, payment simulator, SMTP to a local sink) plus the API.

    The worker gets its own engine, as a worker process would; the SMTP sink
    stores what it catches in ``caught_mail`` like the dev stack's.
    """
    engine = create_engine(database_url, pool_size=10)
    sessions = create_session_factory(engine)
    smtp_port = free_port()
    sink = await start_smtp_sink(sessions, "127.0.0.1", smtp_port)
    settings = settings.model_copy(
        update={
            "task_queue": f"e2e-{uuid.uuid4()}",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
        }
    )
    try:
        worker = build_worker(temporal, settings, sessions)
        async with worker, api_client(settings, temporal) as api:
            yield Stack(api, settings, sessions, temporal)
    finally:
        sink.close()
        await sink.wait_closed()
        await engine.dispose()
