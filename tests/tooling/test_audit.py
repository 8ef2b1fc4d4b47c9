"""The audit finds each kind of violation it promises to, and passes a clean database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from core.db import SessionFactory
from core.models import (
    MovementKind,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Reservation,
    ReservationStatus,
    Role,
    StockMovement,
    User,
)
from tests.support.factories import create_product, create_user
from tooling.audit import run_audit
from workflows import search_attributes


async def _order(
    sessions: SessionFactory, user: User, status: OrderStatus, total: int = 1000
) -> uuid.UUID:
    order = Order(
        customer_id=user.id,
        status=status,
        currency="USD",
        total=total,
        shipping_address={},
        idempotency_key=uuid.uuid4().hex,
        request_fingerprint="0" * 64,
    )
    async with sessions() as session, session.begin():
        session.add(order)
    return order.id


async def _capture(sessions: SessionFactory, order_id: uuid.UUID, amount: int) -> str:
    charge_id = f"ch_{uuid.uuid4().hex[:12]}"
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO simulator_charges (id, idempotency_key, amount, currency, status)"
                " VALUES (:id, :key, :amount, 'USD', 'captured')"
            ),
            {"id": charge_id, "key": f"charge-{order_id}", "amount": amount},
        )
    return charge_id


async def _refund(sessions: SessionFactory, charge_id: str, amount: int) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO simulator_refunds (id, idempotency_key, charge_id, amount)"
                " VALUES (:id, :key, :charge, :amount)"
            ),
            {
                "id": f"re_{uuid.uuid4().hex[:12]}",
                "key": uuid.uuid4().hex,
                "charge": charge_id,
                "amount": amount,
            },
        )


async def test_a_consistent_database_passes(sessions: SessionFactory) -> None:
    await create_product(sessions, stock=5)
    user = await create_user(sessions)
    confirmed = await _order(sessions, user, OrderStatus.CONFIRMED, total=1000)
    await _capture(sessions, confirmed, 1000)
    cancelled = await _order(sessions, user, OrderStatus.CANCELLED, total=700)
    await _refund(sessions, await _capture(sessions, cancelled, 700), 700)
    await _order(sessions, user, OrderStatus.REJECTED)

    report = await run_audit(sessions)

    assert report.ok, report.render()
    assert (report.products, report.orders) == (1, 3)


async def test_finds_stock_that_the_ledger_does_not_explain(sessions: SessionFactory) -> None:
    product = await create_product(sessions, stock=5)
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE products SET stock = stock - 1 WHERE id = :id"), {"id": product.id}
        )

    report = await run_audit(sessions)

    assert not report.ok
    assert any(product.sku in v and "supplied 5" in v for v in report.violations)


async def test_finds_money_kept_on_a_failed_order_and_missing_on_a_confirmed_one(
    sessions: SessionFactory,
) -> None:
    user = await create_user(sessions)
    failed = await _order(sessions, user, OrderStatus.PAYMENT_FAILED)
    await _capture(sessions, failed, 1000)  # charged, never refunded
    confirmed = await _order(sessions, user, OrderStatus.CONFIRMED)  # never charged

    report = await run_audit(sessions)

    assert any(str(failed) in v and "expected 0" in v for v in report.violations)
    assert any(str(confirmed) in v and "kept 0" in v for v in report.violations)


async def test_finds_refunds_without_a_capture_and_captures_without_an_order(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO simulator_charges (id, idempotency_key, amount, currency, status)"
                " VALUES ('ch_declined', 'charge-nobody', 500, 'USD', 'declined'),"
                "        ('ch_stray', 'charge-stray', 500, 'USD', 'captured')"
            )
        )
    await _refund(sessions, "ch_declined", 500)

    report = await run_audit(sessions)

    assert any("does not belong to a capture" in v for v in report.violations)
    assert any("ch_stray belongs to no order" in v for v in report.violations)


async def test_lists_attention_and_flags_orders_stuck_in_pending(sessions: SessionFactory) -> None:
    user = await create_user(sessions, role=Role.CUSTOMER)
    stuck = await _order(sessions, user, OrderStatus.PENDING)
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE orders SET needs_attention = true WHERE id = :id"), {"id": stuck}
        )

    fresh = await run_audit(sessions)
    later = await run_audit(sessions, now=datetime.now(UTC) + timedelta(hours=1))

    assert fresh.ok and fresh.needs_attention == [str(stuck)]
    assert any(str(stuck) in v and "stuck" in v for v in later.violations)


async def _catch(sessions: SessionFactory, *mails: tuple[str, str, str]) -> None:
    """Rows in caught_mail: (Message-ID, subject, body) each, to one recipient."""
    async with sessions() as session, session.begin():
        for message_id, subject, body in mails:
            await session.execute(
                text(
                    "INSERT INTO caught_mail (mail_from, rcpt_to, subject, message_id, body)"
                    " VALUES ('a@x', 'b@x', :subject, :message_id, :body)"
                ),
                {"subject": subject, "message_id": message_id, "body": body},
            )


async def test_an_identical_resend_is_counted_not_a_violation(sessions: SessionFactory) -> None:
    same = ("<order-1-order_confirmed@shop>", "Order confirmed", "Thanks")
    await _catch(sessions, same, same, same, ("<order-2-order_confirmed@shop>", "s", "b"))

    report = await run_audit(sessions)

    assert report.violations == []
    assert report.resends == 2
    assert "resent" in report.render()


async def test_two_different_messages_under_one_message_id_are_a_violation(
    sessions: SessionFactory,
) -> None:
    await _catch(
        sessions,
        ("<order-1-order_confirmed@shop>", "Order confirmed", "Thanks"),
        ("<order-1-order_confirmed@shop>", "Order confirmed", "Something else"),
    )

    report = await run_audit(sessions)

    assert len(report.violations) == 1
    assert "<order-1-order_confirmed@shop>" in report.violations[0]
    assert report.resends == 0


async def test_one_message_under_two_message_ids_is_a_violation(sessions: SessionFactory) -> None:
    await _catch(
        sessions,
        ("<order-1-order_confirmed@shop>", "Order confirmed", "Thanks"),
        ("<order-1-order_confirmed@other-shop>", "Order confirmed", "Thanks"),
    )

    report = await run_audit(sessions)

    assert len(report.violations) == 1
    assert "order-1-order_confirmed" in report.violations[0]


async def test_a_confirmed_order_being_cancelled_is_judged_by_how_long_the_undo_takes(
    sessions: SessionFactory,
) -> None:
    # Live traffic: the refund of a confirmed order lands before its status
    # turns `cancelled`. That is not money lost, unless the undo never ends.
    user = await create_user(sessions)
    undoing = await _order(sessions, user, OrderStatus.CONFIRMED, total=900)
    await _refund(sessions, await _capture(sessions, undoing, 900), 900)
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO order_events (order_id, type, detail, dedupe_key)"
                " VALUES (:id, 'compensation.started', 'refund_payment', 'c')"
            ),
            {"id": undoing},
        )

    now = await run_audit(sessions)
    later = await run_audit(sessions, now=datetime.now(UTC) + timedelta(hours=1))

    assert now.ok, now.render()
    assert now.undoing == 1
    assert any(str(undoing) in v and "being cancelled" in v for v in later.violations)


def _mentions(violations: list[str], order_id: uuid.UUID) -> list[str]:
    return [v for v in violations if str(order_id) in v]


# --- every settled order has a settled payment and no card token (issue 10, item 3)


async def _payment(
    sessions: SessionFactory,
    order_id: uuid.UUID,
    status: PaymentStatus,
    token: str | None,
    amount: int = 1000,
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Payment(
                order_id=order_id,
                provider="simulator",
                token=token,
                status=status,
                amount=amount,
                currency="USD",
            )
        )


async def test_finds_a_settled_order_keeping_its_card_token_or_an_unsettled_payment(
    sessions: SessionFactory,
) -> None:
    user = await create_user(sessions)
    # What every rejection for stock used to leave behind.
    rejected = await _order(sessions, user, OrderStatus.REJECTED)
    await _payment(sessions, rejected, PaymentStatus.PENDING, "tok_visa")
    confirmed = await _order(sessions, user, OrderStatus.CONFIRMED)
    await _capture(sessions, confirmed, 1000)
    await _payment(sessions, confirmed, PaymentStatus.CAPTURED, "tok_visa")
    clean = await _order(sessions, user, OrderStatus.REJECTED)
    await _payment(sessions, clean, PaymentStatus.NOT_CHARGED, None)
    waiting = await _order(sessions, user, OrderStatus.PENDING)
    await _payment(sessions, waiting, PaymentStatus.PENDING, "tok_visa")

    report = await run_audit(sessions)

    assert len(_mentions(report.violations, rejected)) == 2  # unsettled, and the token
    assert len(_mentions(report.violations, confirmed)) == 1  # the token
    assert _mentions(report.violations, clean) == []
    assert _mentions(report.violations, waiting) == []  # the charge still needs it


# --- progress of every state that is not final (issue 10, item 4) -------------


async def _hold(sessions: SessionFactory, order_id: uuid.UUID, status: ReservationStatus) -> None:
    """One unit held for the order, with the ledger and stock kept balanced."""
    product = await create_product(sessions, stock=5)
    async with sessions() as session, session.begin():
        row = await session.get_one(type(product), product.id)
        row.stock -= 1
        session.add(StockMovement(product_id=product.id, kind=MovementKind.RESERVE, delta=-1))
        session.add(
            Reservation(order_id=order_id, product_id=product.id, quantity=1, status=status)
        )


async def test_finds_a_half_shipped_order_still_holding_its_stock(
    sessions: SessionFactory,
) -> None:
    # record_shipment marked the row shipped; commit_stock never ran.
    user = await create_user(sessions)
    half_shipped = await _order(sessions, user, OrderStatus.SHIPPED)
    await _capture(sessions, half_shipped, 1000)
    await _hold(sessions, half_shipped, ReservationStatus.HELD)
    shipped = await _order(sessions, user, OrderStatus.SHIPPED)
    await _capture(sessions, shipped, 1000)
    await _hold(sessions, shipped, ReservationStatus.COMMITTED)
    cancelled = await _order(sessions, user, OrderStatus.CANCELLED)
    await _hold(sessions, cancelled, ReservationStatus.HELD)

    fresh = await run_audit(sessions)
    later = await run_audit(sessions, now=datetime.now(UTC) + timedelta(hours=1))

    # A ship in flight has a moment between its writes; an ended order none.
    assert _mentions(fresh.violations, half_shipped) == []
    assert len(_mentions(later.violations, half_shipped)) == 1
    assert _mentions(later.violations, shipped) == []
    assert len(_mentions(fresh.violations, cancelled)) == 1
    assert fresh.not_final == later.not_final == 2


@pytest.fixture
async def workflows(temporal_client: Client) -> AsyncIterator[WorkflowStarter]:
    starter = WorkflowStarter(temporal_client)
    yield starter
    await starter.close()


class WorkflowStarter:
    """Real executions on the dev server, named as the saga names them, in a given status.

    No worker polls their task queue, so each stays exactly as it was
    started: the audit reads only the execution status and the
    ``OrderStatus`` search attribute, as ``describe`` returns them.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.task_queue = f"audit-{uuid.uuid4()}"
        self._running: list[str] = []

    async def start(self, order_id: uuid.UUID, status: str, *, running: bool = True) -> None:
        handle = await self.client.start_workflow(
            "OrderWorkflow",
            id=f"order-{order_id}",
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(search_attributes.ORDER_STATUS, status)]
            ),
        )
        if running:
            self._running.append(handle.id)
        else:
            await handle.terminate(reason="test: the workflow is gone")

    async def close(self) -> None:
        for workflow_id in self._running:
            await self.client.get_workflow_handle(workflow_id).terminate(reason="test over")


async def test_with_temporal_every_open_order_needs_a_workflow_that_agrees(
    sessions: SessionFactory, workflows: WorkflowStarter
) -> None:
    user = await create_user(sessions)

    async def order(db: OrderStatus, workflow: str | None, *, running: bool = True) -> uuid.UUID:
        order_id = await _order(sessions, user, db)
        if db in (OrderStatus.CONFIRMED, OrderStatus.SHIPPED):
            await _capture(sessions, order_id, 1000)
        if workflow is not None:
            await workflows.start(order_id, workflow, running=running)
        return order_id

    agrees = await order(OrderStatus.CONFIRMED, "confirmed")
    # The database is written first: one step ahead is a step in flight...
    in_flight = await order(OrderStatus.SHIPPED, "confirmed")
    # ...but never behind, and never with the workflow gone.
    behind = await order(OrderStatus.CONFIRMED, "shipped")
    gone = await order(OrderStatus.SHIPPED, "shipped", running=False)
    never_started = await order(OrderStatus.CONFIRMED, None)

    fresh = await run_audit(sessions, temporal=workflows.client)
    later = await run_audit(
        sessions, temporal=workflows.client, now=datetime.now(UTC) + timedelta(hours=1)
    )

    assert _mentions(fresh.violations, agrees) == []
    assert _mentions(fresh.violations, in_flight) == []
    # The half-shipped order: shipped in the database, confirmed in the saga.
    assert len(_mentions(later.violations, in_flight)) == 1
    for broken in (behind, gone, never_started):
        assert len(_mentions(fresh.violations, broken)) == 1, fresh.render()
    assert _mentions(later.violations, agrees) == []


async def test_with_temporal_a_closed_workflow_must_end_as_the_database_says(
    sessions: SessionFactory, workflows: WorkflowStarter
) -> None:
    # Without Temporal the audit cannot tell a confirmed order whose saga is
    # gone from one waiting to be shipped; with it, it can.
    user = await create_user(sessions)
    confirmed = await _order(sessions, user, OrderStatus.CONFIRMED)
    await _capture(sessions, confirmed, 1000)
    await workflows.start(confirmed, "confirmed", running=False)

    without = await run_audit(sessions)
    with_temporal = await run_audit(sessions, temporal=workflows.client)

    assert without.ok, without.render()
    assert len(_mentions(with_temporal.violations, confirmed)) == 1


async def test_orders_written_without_a_saga_skip_only_the_workflow_check(
    sessions: SessionFactory, temporal_client: Client
) -> None:
    # The bench's one-transaction floor writes confirmed orders with no
    # workflow behind them; every other check still judges them.
    user = await create_user(sessions)
    floor = await _order(sessions, user, OrderStatus.CONFIRMED)
    await _capture(sessions, floor, 1000)
    unpaid = await _order(sessions, user, OrderStatus.CONFIRMED)

    report = await run_audit(sessions, temporal=temporal_client, without_workflow={floor, unpaid})

    assert _mentions(report.violations, floor) == []
    assert len(_mentions(report.violations, unpaid)) == 1  # kept 0 of its total
