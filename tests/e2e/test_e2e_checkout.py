"""End to end: the REST API, the real worker, the Temporal dev server and PostgreSQL.

Every test drives the saga only through HTTP (``Prefer: wait`` instead of
sleeps) and then checks where stock and money really live: ``products.stock``,
``payments`` and the payment simulator's own books.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from core.db import SessionFactory
from core.models import (
    Notification,
    OrderStatus,
    PaymentStatus,
    Reservation,
    ReservationStatus,
    Role,
    User,
)
from tests.support.e2e import (
    Stack,
    checkout,
    count_orders,
    order_body,
    payment_of,
    simulator_charges,
    simulator_refunds,
    stock_of,
)
from tests.support.factories import auth_header, create_product, create_user
from tests.support.polling import poll_until
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import workflow_id

# Long enough for a saga on a busy 2-core machine; a settled order answers at once.
WAIT = 30


@pytest.fixture
async def admin_headers(stack: Stack, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(stack.settings, await create_user(sessions, role=Role.ADMIN))


async def _notification_kinds(
    sessions: SessionFactory, order_id: str, expected: set[str]
) -> set[str]:
    """The order's email notifications once ``expected`` have gone out (bounded wait).

    Messages leave from the saga's outbox after the status change is
    answered, so the last one may trail the HTTP answer by a moment.
    """

    async def sent() -> set[str] | None:
        async with sessions() as session:
            kinds = set(
                await session.scalars(
                    select(Notification.kind).where(
                        Notification.order_id == uuid.UUID(order_id),
                        Notification.channel == "email",
                    )
                )
            )
        return kinds if expected <= kinds else None

    return await poll_until(sent, f"order {order_id} sending {sorted(expected)}", interval=0.1)


async def test_happy_path_confirms_then_ships_and_delivers(
    stack: Stack,
    sessions: SessionFactory,
    headers: dict[str, str],
    admin_headers: dict[str, str],
    customer: User,
) -> None:
    product = await create_product(sessions, price=1250, stock=5)

    placed = await checkout(stack.api, headers, order_body((product, 2)), wait=WAIT)

    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "confirmed"
    assert order["payment"] == {"status": "captured", "amount": 2500, "refunded_amount": 0}
    assert await stock_of(sessions, product.id) == 3
    charges = await simulator_charges(sessions)
    assert [(c.amount, c.status) for c in charges] == [(2500, "captured")]

    # The customer cannot ship; the admin can, and then deliver.
    assert (await stack.api.post(f"/orders/{order['id']}/ship", headers=headers)).status_code == 403
    shipped = await stack.api.post(
        f"/orders/{order['id']}/ship",
        json={"carrier": "DHL", "tracking_number": "JD0142"},
        headers=admin_headers,
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"
    assert (shipped.json()["carrier"], shipped.json()["tracking_number"]) == ("DHL", "JD0142")
    # Once shipped it can no longer be cancelled.
    late_cancel = await stack.api.post(f"/orders/{order['id']}/cancel", headers=headers)
    assert late_cancel.status_code == 409

    delivered = await stack.api.post(f"/orders/{order['id']}/deliver", headers=admin_headers)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["status"] == "delivered"

    handle = stack.temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id(order["id"]))
    result = await asyncio.wait_for(handle.result(), WAIT)
    assert result.status == "delivered"
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "delivered"

    # Stock left the warehouse for good; exactly one charge, no refund.
    assert await stock_of(sessions, product.id) == 3
    async with sessions() as session:
        reservations = list(await session.scalars(select(Reservation)))
    assert [(r.quantity, r.status) for r in reservations] == [(2, ReservationStatus.COMMITTED)]
    assert len(await simulator_charges(sessions)) == 1
    assert await simulator_refunds(sessions) == []
    payment = await payment_of(sessions, order["id"])
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.CAPTURED, 0)

    expected = {"order_confirmed", "order_shipped", "order_delivered"}
    assert await _notification_kinds(sessions, order["id"], expected) == expected
    mail = await stack.api.get("/admin/mail", params={"limit": 100}, headers=admin_headers)
    assert mail.status_code == 200
    assert any(customer.email in m["rcpt_to"] for m in mail.json()["items"])

    timeline = await stack.api.get(f"/orders/{order['id']}/timeline", headers=headers)
    types = [e["type"] for e in timeline.json()["events"]]
    assert types[0] == "order.placed"
    assert len(types) >= 4


async def test_declined_card_ends_payment_failed_with_stock_back(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    product = await create_product(sessions, price=999, stock=4)

    placed = await checkout(
        stack.api, headers, order_body((product, 3), token="tok_chargeDeclined"), wait=WAIT
    )

    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "payment_failed"
    assert order["failure_reason"]
    assert "tok_chargeDeclined" not in placed.text
    assert await stock_of(sessions, product.id) == 4
    assert [c for c in await simulator_charges(sessions) if c.status == "captured"] == []
    payment = await payment_of(sessions, order["id"])
    assert payment.status is PaymentStatus.DECLINED
    assert payment.refunded_amount == 0
    assert await _notification_kinds(sessions, order["id"], {"payment_failed"}) == {
        "payment_failed"
    }


async def test_ordering_more_than_the_stock_is_rejected_and_nothing_is_charged(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    scarce = await create_product(sessions, stock=1)
    plenty = await create_product(sessions, stock=10)

    placed = await checkout(stack.api, headers, order_body((plenty, 2), (scarce, 2)), wait=WAIT)

    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "rejected"
    assert placed.json()["failure_reason"]
    # All or nothing: the line that could be held was not held either.
    assert await stock_of(sessions, scarce.id) == 1
    assert await stock_of(sessions, plenty.id) == 10
    assert await simulator_charges(sessions) == []
    payment = await payment_of(sessions, placed.json()["id"])
    assert payment.status is not PaymentStatus.CAPTURED
    assert payment.refunded_amount == 0


async def test_cancel_after_confirmation_refunds_in_full_and_releases_stock(
    stack: Stack,
    sessions: SessionFactory,
    headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    product = await create_product(sessions, price=4200, stock=3)
    order = (await checkout(stack.api, headers, order_body((product, 2)), wait=WAIT)).json()
    assert order["status"] == "confirmed"
    assert await stock_of(sessions, product.id) == 1

    # Deliver before shipping: the saga's validator refuses, the API says 409.
    early = await stack.api.post(f"/orders/{order['id']}/deliver", headers=admin_headers)
    assert early.status_code == 409
    assert early.json()["order_status"] == "confirmed"

    cancelled = await stack.api.post(
        f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"}, headers=headers
    )

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["payment"]["refunded_amount"] == body["total"] == 8400
    assert await stock_of(sessions, product.id) == 3
    refunds = await simulator_refunds(sessions)
    assert [r.amount for r in refunds] == [8400]
    payment = await payment_of(sessions, order["id"])
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, 8400)
    # Settled: a second cancel and a ship are conflicts.
    again = await stack.api.post(f"/orders/{order['id']}/cancel", headers=headers)
    assert again.status_code == 409
    ship = await stack.api.post(f"/orders/{order['id']}/ship", headers=admin_headers)
    assert ship.status_code == 409
    assert await _notification_kinds(
        sessions, order["id"], {"order_confirmed", "order_cancelled"}
    ) >= {"order_confirmed", "order_cancelled"}


async def test_retry_with_the_same_key_is_one_order_one_workflow_one_charge(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    product = await create_product(sessions, price=500, stock=10)
    body = order_body((product, 1))

    first = await checkout(stack.api, headers, body, key="pay-once", wait=WAIT)
    handle = stack.temporal.get_workflow_handle(workflow_id(first.json()["id"]))
    first_run = (await handle.describe()).run_id
    second = await checkout(stack.api, headers, body, key="pay-once", wait=WAIT)
    other_body = await checkout(
        stack.api, headers, order_body((product, 2)), key="pay-once", wait=WAIT
    )

    assert first.status_code == 200 and first.json()["status"] == "confirmed"
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["status"] == "confirmed"
    assert other_body.status_code == 409
    assert await count_orders(sessions) == 1
    assert await stock_of(sessions, product.id) == 9
    assert [c.amount for c in await simulator_charges(sessions)] == [500]
    # A second run under the same workflow ID would be the latest run now.
    description = await handle.describe()
    assert description.run_id == first_run
    assert description.status == WorkflowExecutionStatus.RUNNING  # waiting to ship


async def test_customers_racing_for_the_last_units_get_exactly_the_stock(
    stack: Stack, sessions: SessionFactory
) -> None:
    units, buyers = 3, 8
    product = await create_product(sessions, price=100, stock=units)
    customers = [await create_user(sessions) for _ in range(buyers)]

    responses = await asyncio.gather(
        *(
            checkout(stack.api, auth_header(stack.settings, c), order_body((product, 1)), wait=WAIT)
            for c in customers
        )
    )

    statuses = sorted(r.json()["status"] for r in responses)
    assert {r.status_code for r in responses} == {200}
    assert statuses == ["confirmed"] * units + ["rejected"] * (buyers - units)
    assert await stock_of(sessions, product.id) == 0
    charges = await simulator_charges(sessions)
    assert sorted(c.amount for c in charges) == [100] * units
    async with sessions() as session:
        held = list(
            await session.scalars(
                select(Reservation.quantity).where(Reservation.status == ReservationStatus.HELD)
            )
        )
    assert sum(held) == units
    for response in responses:
        payment = await payment_of(sessions, response.json()["id"])
        captured = payment.status is PaymentStatus.CAPTURED
        assert captured == (response.json()["status"] == OrderStatus.CONFIRMED.value)


async def test_an_admin_can_cancel_a_customers_order(
    stack: Stack,
    sessions: SessionFactory,
    headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    product = await create_product(sessions, price=300, stock=2)
    order = (await checkout(stack.api, headers, order_body((product, 2)), wait=WAIT)).json()
    assert order["status"] == "confirmed"
    assert await stock_of(sessions, product.id) == 0

    cancelled = await stack.api.post(
        f"/orders/{order['id']}/cancel", json={"reason": "fraud check"}, headers=admin_headers
    )

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["payment"]["refunded_amount"] == 600
    assert await stock_of(sessions, product.id) == 2
    assert [r.amount for r in await simulator_refunds(sessions)] == [600]
    # The customer sees the same settled order.
    mine = await stack.api.get(f"/orders/{order['id']}", headers=headers)
    assert mine.json()["status"] == "cancelled"


async def _stock_reserved(sessions: SessionFactory, product_id: uuid.UUID, left: int) -> bool:
    """Whether the saga has reserved the stock, so its charge comes next (bounded poll)."""
    for _ in range(200):
        if await stock_of(sessions, product_id) == left:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_cancel_while_the_provider_hangs_cancels_and_voids_the_payment(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    # tok_timeout: the provider never answers. The cancel must be taken while
    # the charge hangs, end the order cancelled with its reason, and leave no
    # money captured. (Before CANCELLABLE_CHARGE: 503 or 200 pending, then
    # payment_failed with no cancel reason a minute later.)
    product = await create_product(sessions, price=1500, stock=2)
    placed = await checkout(stack.api, headers, order_body((product, 1), token="tok_timeout"))
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]
    assert await _stock_reserved(sessions, product.id, left=1)

    cancelled = await stack.api.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "took too long"},
        headers={**headers, "Prefer": f"wait={WAIT}"},
    )

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.headers["Preference-Applied"] == f"wait={WAIT}"
    body = cancelled.json()
    assert (body["status"], body["cancel_reason"]) == ("cancelled", "took too long")
    payment = await payment_of(sessions, order_id)
    assert payment.status is PaymentStatus.VOIDED
    assert payment.token is None
    assert [c for c in await simulator_charges(sessions) if c.status == "captured"] == []
    assert await stock_of(sessions, product.id) == 2
