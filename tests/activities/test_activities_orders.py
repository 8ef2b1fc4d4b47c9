"""Order read-model activities against the real PostgreSQL."""

from __future__ import annotations

import socket
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_ORDER
from activities.orders import (
    AttentionCleared,
    AttentionInput,
    OrderActivities,
    RecordOrderInput,
    ShipmentInput,
    StatusChange,
    TimelineEvent,
)
from core.db import SessionFactory, create_engine, create_session_factory
from core.models import Order, OrderEvent, OrderStatus, Payment, PaymentStatus
from tests.support.order_factory import create_order


async def _events(sessions: SessionFactory, order_id: uuid.UUID) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OrderEvent.type, OrderEvent.detail)
            .where(OrderEvent.order_id == order_id)
            .order_by(OrderEvent.id)
        )
        return [(t, d) for t, d in rows.all()]


async def _order(sessions: SessionFactory, order_id: uuid.UUID) -> Order:
    async with sessions() as session:
        return await session.get_one(Order, order_id)


async def test_record_order_twice_writes_one_received_event(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()

    await env.run(acts.record_order, RecordOrderInput(str(order.id)))
    await env.run(acts.record_order, RecordOrderInput(str(order.id)))

    assert [t for t, _ in await _events(sessions, order.id)] == ["order.received"]


async def test_unknown_order_is_a_non_retryable_invalid_order(sessions: SessionFactory) -> None:
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    for order_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(ApplicationError) as caught:
            await env.run(acts.record_order, RecordOrderInput(order_id))
        assert caught.value.type == INVALID_ORDER
        assert caught.value.non_retryable


async def test_a_timeline_event_of_an_unknown_order_is_refused_and_writes_nothing(
    sessions: SessionFactory,
) -> None:
    # The foreign key, not a SELECT first, finds the order missing.
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    missing = uuid.uuid4()
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.record_event, TimelineEvent(str(missing), "payment.retry", "x", "k"))
    assert caught.value.type == INVALID_ORDER
    assert caught.value.non_retryable
    assert await _events(sessions, missing) == []


async def test_set_status_updates_row_and_dedupes_timeline(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    change = StatusChange(str(order.id), "rejected", failure_reason="out of stock: SKU-1")

    await env.run(acts.set_status, change)
    await env.run(acts.set_status, change)

    row = await _order(sessions, order.id)
    assert row.status is OrderStatus.REJECTED
    assert row.failure_reason == "out of stock: SKU-1"
    assert row.updated_at >= row.created_at
    assert await _events(sessions, order.id) == [("order.rejected", "out of stock: SKU-1")]


async def test_a_forward_status_and_its_line_are_written_once(sessions: SessionFactory) -> None:
    # The confirmation: the status and its timeline line in one statement.
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    change = StatusChange(str(order.id), "confirmed", detail="paid")

    await env.run(acts.set_status, change)
    await env.run(acts.set_status, change)

    assert (await _order(sessions, order.id)).status is OrderStatus.CONFIRMED
    assert await _events(sessions, order.id) == [("order.confirmed", "paid")]


async def test_a_status_of_an_unknown_order_is_refused_and_writes_nothing(
    sessions: SessionFactory,
) -> None:
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    missing = uuid.uuid4()
    for status in ("confirmed", "rejected"):  # one statement, and a transaction
        with pytest.raises(ApplicationError) as caught:
            await env.run(acts.set_status, StatusChange(str(missing), status))
        assert caught.value.type == INVALID_ORDER
        assert caught.value.non_retryable
    assert await _events(sessions, missing) == []


async def test_set_status_refuses_an_unknown_status(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            OrderActivities(sessions).set_status, StatusChange(str(order.id), "teleported")
        )
    assert caught.value.type == INVALID_ORDER
    assert (await _order(sessions, order.id)).status is OrderStatus.PENDING


async def test_record_event_honours_the_dedupe_key(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    keyed = TimelineEvent(str(order.id), "compensation.started", "refund", dedupe_key="comp:1")

    await env.run(acts.record_event, keyed)
    await env.run(acts.record_event, keyed)
    # Without a key every call is its own event.
    await env.run(acts.record_event, TimelineEvent(str(order.id), "note", "a"))
    await env.run(acts.record_event, TimelineEvent(str(order.id), "note", "a"))

    assert await _events(sessions, order.id) == [
        ("compensation.started", "refund"),
        ("note", "a"),
        ("note", "a"),
    ]


async def test_flag_for_attention_sets_flag_and_one_event(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    flag = AttentionInput(str(order.id), step="refund_payment", error="provider down")

    await env.run(acts.flag_for_attention, flag)
    await env.run(acts.flag_for_attention, flag)

    assert (await _order(sessions, order.id)).needs_attention
    events = await _events(sessions, order.id)
    assert [t for t, _ in events] == ["order.needs_attention"]
    assert "refund_payment" in events[0][1]


async def test_clear_attention_unsets_flag_and_adds_one_event(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    await env.run(
        acts.flag_for_attention,
        AttentionInput(str(order.id), step="release_stock", error="database down"),
    )
    cleared = AttentionCleared(str(order.id), step="release_stock")

    await env.run(acts.clear_attention, cleared)
    await env.run(acts.clear_attention, cleared)  # a retry adds nothing

    assert not (await _order(sessions, order.id)).needs_attention
    events = await _events(sessions, order.id)
    assert [t for t, _ in events] == ["order.needs_attention", "order.attention_cleared"]
    assert "release_stock" in events[1][1]


async def test_clear_attention_of_an_unknown_order_is_refused(sessions: SessionFactory) -> None:
    acts, env = OrderActivities(sessions), ActivityEnvironment()

    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.clear_attention, AttentionCleared(str(uuid.uuid4()), "release_stock"))

    assert caught.value.type == INVALID_ORDER
    assert caught.value.non_retryable


async def test_record_shipment_stores_carrier_and_ships(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()
    shipment = ShipmentInput(str(order.id), carrier="DHL", tracking_number="JD0123")

    await env.run(acts.record_shipment, shipment)
    await env.run(acts.record_shipment, shipment)

    row = await _order(sessions, order.id)
    assert (row.status, row.carrier, row.tracking_number) == (OrderStatus.SHIPPED, "DHL", "JD0123")
    assert await _events(sessions, order.id) == [("order.shipped", "DHL JD0123")]


async def test_database_outage_propagates_as_a_retryable_error() -> None:
    # A port nobody listens on stands for PostgreSQL being down. The error must
    # not be turned into a non-retryable ApplicationError: the workflow's retry
    # policy is what rides out an outage.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres", pool_size=1)
    try:
        acts = OrderActivities(create_session_factory(engine))
        with pytest.raises(OperationalError):
            await ActivityEnvironment().run(acts.record_order, RecordOrderInput(str(uuid.uuid4())))
    finally:
        await engine.dispose()


# --- every end state settles the payment (issue 10, item 3) -------------------


async def _payment(sessions: SessionFactory, order_id: uuid.UUID) -> Payment:
    async with sessions() as session:
        return await session.get_one(Payment, order_id)


@pytest.mark.parametrize(
    "status", [OrderStatus.REJECTED, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED]
)
async def test_a_failure_end_settles_a_payment_never_charged_and_drops_the_token(
    sessions: SessionFactory, status: OrderStatus
) -> None:
    # A rejection for stock never reaches the charge: its payment used to stay
    # pending for ever, card token and all.
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()

    await env.run(acts.set_status, StatusChange(str(order.id), status.value, "out_of_stock"))
    await env.run(acts.set_status, StatusChange(str(order.id), status.value, "out_of_stock"))

    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.token, payment.refunded_amount) == (
        PaymentStatus.NOT_CHARGED,
        None,
        0,
    )
    assert (await _order(sessions, order.id)).status is status


async def test_a_failure_end_leaves_a_settled_payment_as_it_is(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    async with sessions() as session, session.begin():
        payment = await session.get_one(Payment, order.id)
        payment.status, payment.refunded_amount, payment.token = (
            PaymentStatus.REFUNDED,
            order.total,
            None,
        )
    acts, env = OrderActivities(sessions), ActivityEnvironment()

    await env.run(acts.set_status, StatusChange(str(order.id), OrderStatus.CANCELLED.value))

    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, order.total)


async def test_a_forward_status_leaves_the_payment_alone(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    acts, env = OrderActivities(sessions), ActivityEnvironment()

    await env.run(acts.set_status, StatusChange(str(order.id), OrderStatus.CONFIRMED.value))

    payment = await _payment(sessions, order.id)
    assert (payment.status, payment.token) == (PaymentStatus.PENDING, "tok_visa")
