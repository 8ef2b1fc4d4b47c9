"""The audit finds each kind of violation it promises to, and passes a clean database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.db import SessionFactory
from core.models import Order, OrderStatus, Role, User
from tests.factories import create_product, create_user
from tooling.audit import run_audit


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


async def test_finds_a_mail_delivered_twice(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO caught_mail (mail_from, rcpt_to, subject, message_id, body) VALUES"
                " ('a@x', 'b@x', 's', '<order-1.confirmed@ordersaga>', ''),"
                " ('a@x', 'b@x', 's', '<order-1.confirmed@ordersaga>', '')"
            )
        )

    report = await run_audit(sessions)

    assert report.violations == ["mail <order-1.confirmed@ordersaga> delivered 2 times"]


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
