"""The dashboard: its counts follow the orders, JSON for admins only, Temporal optional."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from core.db import SessionFactory
from core.models import Order, OrderStatus
from core.models.users import Role
from core.settings import Settings
from tests.api.console.console_support import HTML, make_admin
from tests.support.factories import auth_header, create_user
from tests.support.order_factory import create_order


async def _order(
    sessions: SessionFactory, status: OrderStatus, created: datetime, updated: datetime
) -> uuid.UUID:
    order = await create_order(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(status=status, created_at=created, updated_at=updated)
        )
    return order.id


async def _orders(sessions: SessionFactory) -> uuid.UUID:
    """Orders on both sides of each boundary; the id of the oldest pending one."""
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=3)
    await _order(sessions, OrderStatus.CONFIRMED, now, now)
    await _order(sessions, OrderStatus.PAYMENT_FAILED, now, now)
    await _order(sessions, OrderStatus.REJECTED, now, now)
    await _order(sessions, OrderStatus.PENDING, now, now)
    # Placed days ago: not today's; changed long ago or just now.
    await _order(sessions, OrderStatus.CANCELLED, long_ago, long_ago)
    await _order(sessions, OrderStatus.CANCELLED, long_ago, now - timedelta(minutes=10))
    await _order(sessions, OrderStatus.CONFIRMED, long_ago, now - timedelta(hours=2))
    return await _order(sessions, OrderStatus.PENDING, now - timedelta(days=2), long_ago)


async def test_the_counts_match_the_orders(
    console: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    oldest = await _orders(sessions)
    admin = await create_user(sessions, role=Role.ADMIN)
    answer = await console.get("/admin/dashboard", headers=auth_header(settings, admin))
    assert answer.status_code == 200
    board = answer.json()
    assert board["today_by_status"] == {
        "pending": 1,
        "confirmed": 1,
        "shipped": 0,
        "delivered": 0,
        "rejected": 1,
        "payment_failed": 1,
        "cancelled": 0,
    }
    assert board["last_hour"] == {"confirmed": 1, "failed": 2, "cancelled": 1}
    assert board["oldest_pending"]["id"] == str(oldest)
    assert isinstance(board["sagas_in_flight"], int)


async def test_the_page_shows_the_same_counts(
    console: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    oldest = await _orders(sessions)
    await make_admin(console, sessions)
    answer = await console.get("/console", headers=HTML)
    assert answer.status_code == 200
    page = answer.text
    assert 'id="hour-failed">2<' in page
    assert 'id="today-pending">1<' in page
    assert f'href="/console/orders/{oldest}"' in page


async def test_without_temporal_sagas_in_flight_is_unknown(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    admin = await make_admin(api, sessions)
    answer = await api.get("/admin/dashboard", headers=auth_header(settings, admin))
    assert answer.status_code == 200
    assert answer.json()["sagas_in_flight"] is None
    page = await api.get("/console", headers=HTML)
    assert page.status_code == 200
    assert 'id="in-flight">Unknown<' in page.text


async def test_the_json_dashboard_is_for_admins_only(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    customer = await create_user(sessions)
    refused = await api.get("/admin/dashboard", headers=auth_header(settings, customer))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "forbidden"
    anonymous = await api.get("/admin/dashboard")
    assert anonymous.status_code == 401
