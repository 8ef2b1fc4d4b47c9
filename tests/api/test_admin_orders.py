"""GET /admin/orders (the console's order table) and the progress of an order with no saga.

Orders are written straight into the read model (no saga), so each filter
and each branch of the stuck rule is set up exactly; their rows' progress
comes from the real Temporal dev server, which has no workflow for them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from temporalio.client import Client

from core.db import SessionFactory
from core.models import Notification, Order, OrderEvent, OrderStatus, Role, User
from core.settings import Settings
from tests.support.e2e import api_client
from tests.support.factories import auth_header, create_user
from tests.support.order_factory import create_order

pytestmark = pytest.mark.timeout(120)

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
async def admin_api(
    settings: Settings, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, temporal_client) as client:
        yield client


@pytest.fixture
async def admin(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


async def _order(
    sessions: SessionFactory,
    customer: User,
    *,
    status: OrderStatus = OrderStatus.PENDING,
    at: datetime | None = None,
    needs_attention: bool = False,
) -> uuid.UUID:
    order = await create_order(sessions, customer=customer)
    values: dict[str, object] = {"status": status, "needs_attention": needs_attention}
    if at is not None:
        values |= {"created_at": at, "updated_at": at}
    async with sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order.id).values(**values))
    return order.id


async def _event(sessions: SessionFactory, order_id: uuid.UUID, type: str, at: datetime) -> None:
    async with sessions() as session, session.begin():
        session.add(OrderEvent(order_id=order_id, type=type, detail="", at=at))


async def _ids(api: httpx.AsyncClient, admin: dict[str, str], **params: str | int) -> set[str]:
    response = await api.get("/admin/orders", params=params, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return {row["order"]["id"] for row in body["items"]}


async def test_each_filter_narrows_the_list(
    admin_api: httpx.AsyncClient, admin: dict[str, str], sessions: SessionFactory
) -> None:
    customer = await create_user(sessions)
    other = await create_user(sessions)
    pending = await _order(sessions, customer)
    confirmed = await _order(sessions, customer, status=OrderStatus.CONFIRMED)
    flagged = await _order(sessions, customer, status=OrderStatus.CANCELLED, needs_attention=True)
    old = await _order(sessions, customer, at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    await _order(sessions, other)
    mine = {str(pending), str(confirmed), str(flagged), str(old)}

    # The email matches exactly, in any case.
    assert await _ids(admin_api, admin, customer=customer.email.upper()) == mine
    assert await _ids(admin_api, admin, customer_id=str(customer.id)) == mine
    assert await _ids(admin_api, admin, customer=customer.email, status="confirmed") == {
        str(confirmed)
    }
    assert await _ids(admin_api, admin, customer=customer.email, needs_attention="true") == {
        str(flagged)
    }
    assert await _ids(
        admin_api,
        admin,
        customer=customer.email,
        created_from="2020-01-01",
        created_to="2020-01-01",
    ) == {str(old)}
    assert await _ids(admin_api, admin, customer=customer.email, created_from="2021-01-01") == (
        mine - {str(old)}
    )
    assert await _ids(admin_api, admin, customer="nobody-" + customer.email) == set()


async def test_rows_are_newest_first_paginated_and_carry_no_progress_unless_stuck(
    admin_api: httpx.AsyncClient, admin: dict[str, str], sessions: SessionFactory
) -> None:
    customer = await create_user(sessions)
    older = await _order(sessions, customer, at=LONG_AGO)
    newer = await _order(sessions, customer)

    response = await admin_api.get(
        "/admin/orders", params={"customer": customer.email, "limit": 1}, headers=admin
    )

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    [row] = body["items"]
    assert row["order"]["id"] == str(newer)
    assert row["customer_email"] == customer.email
    assert row["progress"] is None
    second = await admin_api.get(
        "/admin/orders", params={"customer": customer.email, "limit": 1, "offset": 1}, headers=admin
    )
    assert [r["order"]["id"] for r in second.json()["items"]] == [str(older)]


async def test_stuck_lists_each_branch_of_the_rule_and_nothing_else(
    admin_api: httpx.AsyncClient, admin: dict[str, str], sessions: SessionFactory
) -> None:
    customer = await create_user(sessions)
    # (a) pending, no progress for an hour; a fresh pending one is not stuck.
    pending_old = await _order(sessions, customer, at=LONG_AGO)
    await _event(sessions, pending_old, "order.received", LONG_AGO)
    await _order(sessions, customer)
    # A pending order whose last timeline line is fresh made progress.
    pending_moving = await _order(sessions, customer, at=LONG_AGO)
    await _event(sessions, pending_moving, "payment.retry", datetime.now(UTC))
    # (b) flagged, whatever its status.
    flagged = await _order(
        sessions, customer, status=OrderStatus.CANCELLED, at=LONG_AGO, needs_attention=True
    )
    # Waiting for staff to ship: waiting on the shop, not stuck.
    await _order(sessions, customer, status=OrderStatus.CONFIRMED, at=LONG_AGO)
    # (c) a notification still sending since long ago...
    sending = await _order(sessions, customer, status=OrderStatus.CONFIRMED, at=LONG_AGO)
    async with sessions() as session, session.begin():
        session.add(
            Notification(
                order_id=sending,
                kind="order_confirmed",
                channel="email",
                recipient=customer.email,
                subject="s",
                body="b",
                created_at=LONG_AGO,
            )
        )
    # ... or a cancel whose compensation started long ago and never ended;
    cancelling = await _order(sessions, customer, status=OrderStatus.SHIPPED, at=LONG_AGO)
    await _event(sessions, cancelling, "compensation.started", LONG_AGO)
    # one that ended is not stuck.
    cancelled = await _order(sessions, customer, status=OrderStatus.CONFIRMED, at=LONG_AGO)
    await _event(sessions, cancelled, "compensation.started", LONG_AGO)
    await _event(sessions, cancelled, "compensation.finished", LONG_AGO + timedelta(seconds=1))

    response = await admin_api.get(
        "/admin/orders", params={"customer": customer.email, "stuck": "true"}, headers=admin
    )

    assert response.status_code == 200, response.text
    rows = response.json()["items"]
    assert {row["order"]["id"] for row in rows} == {
        str(pending_old),
        str(flagged),
        str(sending),
        str(cancelling),
    }
    # Every stuck row carries its progress; these have no saga in Temporal.
    for row in rows:
        assert row["progress"]["order_id"] == row["order"]["id"]
        assert row["progress"]["workflow"]["state"] == "unknown"
        assert row["progress"]["waiting_on"] == []


async def test_stuck_after_seconds_overrides_the_setting(
    admin_api: httpx.AsyncClient, admin: dict[str, str], sessions: SessionFactory
) -> None:
    customer = await create_user(sessions)
    ten_minutes = await _order(sessions, customer, at=datetime.now(UTC) - timedelta(minutes=10))

    assert await _ids(admin_api, admin, customer=customer.email, stuck="true") == {str(ten_minutes)}
    assert (
        await _ids(
            admin_api, admin, customer=customer.email, stuck="true", stuck_after_seconds=3600
        )
        == set()
    )
    bad = await admin_api.get(
        "/admin/orders", params={"stuck": "true", "stuck_after_seconds": 0}, headers=admin
    )
    assert bad.status_code == 422


async def test_an_order_without_a_saga_answers_from_the_read_model(
    admin_api: httpx.AsyncClient, admin: dict[str, str], sessions: SessionFactory
) -> None:
    order_id = await _order(sessions, await create_user(sessions), status=OrderStatus.CONFIRMED)

    response = await admin_api.get(f"/admin/orders/{order_id}/progress", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_id"] == str(order_id)
    assert body["status"] == "confirmed"
    assert body["workflow"]["id"] == f"order-{order_id}"
    assert body["workflow"]["state"] == "unknown"
    assert body["workflow"]["run_id"] is None
    # Dev mode links the dev server's Web UI.
    assert body["workflow"]["ui_url"].endswith(f"/namespaces/default/workflows/order-{order_id}")
    assert body["waiting_on"] == []
    retry = await admin_api.post(f"/admin/orders/{order_id}/retry", headers=admin)
    assert retry.status_code == 409
    assert retry.json()["type"] == "nothing-to-retry"


async def test_customers_get_403_and_unknown_orders_404(
    admin_api: httpx.AsyncClient,
    admin: dict[str, str],
    settings: Settings,
    sessions: SessionFactory,
) -> None:
    customer = await create_user(sessions)
    own = await _order(sessions, customer)
    headers = auth_header(settings, customer)

    for method, path in [
        ("GET", "/admin/orders"),
        ("GET", f"/admin/orders/{own}/progress"),
        ("POST", f"/admin/orders/{own}/retry"),
    ]:
        response = await admin_api.request(method, path, headers=headers)
        assert response.status_code == 403, path
        assert response.json()["type"] == "forbidden"
        assert response.headers["content-type"].startswith("application/problem+json")
    for path in [f"/admin/orders/{uuid.uuid4()}/progress", "/admin/orders/not-an-id/progress"]:
        response = await admin_api.get(path, headers=admin)
        assert response.status_code == 404, path
        assert response.json()["type"] == "order-not-found"
    missing = await admin_api.post(f"/admin/orders/{uuid.uuid4()}/retry", headers=admin)
    assert missing.status_code == 404
