"""Order read-model activities: status, timeline and attention flags.

The workflow is the source of truth for an order's progress; these activities
keep the ``orders`` row and its timeline current so the API never has to ask
Temporal. Each one is idempotent: a retry after a crash changes nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg.errors import ForeignKeyViolation
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities import fault_points
from activities.errors import invalid_order, parse_order_id
from activities.timeline import add_event, change_with_line
from core.db import SessionFactory, autocommit
from core.models import Order, OrderStatus, Payment, PaymentStatus


@dataclass
class RecordOrderInput:
    order_id: str


@dataclass
class StatusChange:
    order_id: str
    status: str  # an OrderStatus value
    failure_reason: str | None = None
    detail: str = ""  # timeline text


@dataclass
class TimelineEvent:
    order_id: str
    type: str  # e.g. "compensation.started", "payment.retry"
    detail: str = ""
    # A stable key per logical event, so a retried activity does not repeat it.
    dedupe_key: str | None = None


@dataclass
class AttentionInput:
    order_id: str
    step: str  # the compensation that keeps failing
    error: str


@dataclass
class AttentionCleared:
    order_id: str
    step: str  # the compensation that finally succeeded


@dataclass
class ShipmentInput:
    order_id: str
    carrier: str | None = None
    tracking_number: str | None = None


class OrderActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="record_order")
    async def record_order(self, input: RecordOrderInput) -> None:
        order_id = parse_order_id(input.order_id)
        # One INSERT, atomic by itself: no transaction around it.
        async with autocommit(self._sessions) as session:
            await _add_event_of_order(
                session, order_id, "order.received", dedupe_key="order.received"
            )

    @activity.defn(name="set_order_status")
    async def set_status(self, input: StatusChange) -> None:
        order_id = parse_order_id(input.order_id)
        status = _parse_status(input.status)
        # Named per target status: "set_order_status:confirmed:before" is the pivot.
        await fault_points.reached(f"set_order_status:{status.value}:before")
        if status in _FAILURE_ENDS:
            async with self._sessions() as session, session.begin():
                await _change_status(session, order_id, status, input.failure_reason, input.detail)
                # In the same transaction as the end state, whatever path led
                # here: a payment never charged is settled and its card token
                # dropped, so no ended order keeps one.
                await _settle_uncharged_payment(session, order_id)
                if status is OrderStatus.CANCELLED:
                    # A cancelled order says why: the canceller's reason (or "cancelled").
                    await _update_order(session, order_id, cancel_reason=input.failure_reason)
        else:
            # The status and its timeline line are one statement (the
            # confirmation, on every order's path): no transaction around it.
            async with autocommit(self._sessions) as session:
                await _change_status(session, order_id, status, input.failure_reason, input.detail)
        await fault_points.reached(f"set_order_status:{status.value}:after")

    @activity.defn(name="record_timeline_event")
    async def record_event(self, input: TimelineEvent) -> None:
        order_id = parse_order_id(input.order_id)
        async with autocommit(self._sessions) as session:
            await _add_event_of_order(session, order_id, input.type, input.detail, input.dedupe_key)

    @activity.defn(name="flag_order_for_attention")
    async def flag_for_attention(self, input: AttentionInput) -> None:
        order_id = parse_order_id(input.order_id)
        async with self._sessions() as session, session.begin():
            await _update_order(session, order_id, needs_attention=True)
            await add_event(
                session,
                order_id,
                "order.needs_attention",
                f"{input.step} keeps failing: {input.error}",
                dedupe_key=f"attention:{input.step}",
            )

    @activity.defn(name="clear_order_attention")
    async def clear_attention(self, input: AttentionCleared) -> None:
        """The compensation that flagged the order went through: nobody needs to look."""
        order_id = parse_order_id(input.order_id)
        async with self._sessions() as session, session.begin():
            await _update_order(session, order_id, needs_attention=False)
            await add_event(
                session,
                order_id,
                "order.attention_cleared",
                f"{input.step} succeeded after all",
                dedupe_key=f"attention_cleared:{input.step}",
            )

    @activity.defn(name="record_shipment")
    async def record_shipment(self, input: ShipmentInput) -> None:
        order_id = parse_order_id(input.order_id)
        detail = " ".join(p for p in (input.carrier, input.tracking_number) if p)
        async with self._sessions() as session, session.begin():
            await _update_order(
                session, order_id, carrier=input.carrier, tracking_number=input.tracking_number
            )
            await _change_status(session, order_id, OrderStatus.SHIPPED, None, detail)


_FAILURE_ENDS = (OrderStatus.REJECTED, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED)


async def _settle_uncharged_payment(session: AsyncSession, order_id: uuid.UUID) -> None:
    # Only a payment still pending: one captured, refunded, voided or declined
    # was settled (and its token cleared) by the payment activities. The saga
    # writes a failure end only after its compensations, so a pending payment
    # here was never charged; and should a stray charge attempt still land,
    # it finds the payment closed and refunds itself (see _record_capture).
    await session.execute(
        update(Payment)
        .where(Payment.order_id == order_id, Payment.status == PaymentStatus.PENDING)
        .values(status=PaymentStatus.NOT_CHARGED, token=None)
    )
    # Belt and braces: whatever its state, an ended order keeps no token.
    await session.execute(
        update(Payment)
        .where(Payment.order_id == order_id, Payment.token.is_not(None))
        .values(token=None)
    )


def _parse_status(value: str) -> OrderStatus:
    try:
        return OrderStatus(value)
    except ValueError:
        raise invalid_order(f"unknown order status {value!r}") from None


async def _add_event_of_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    type: str,
    detail: str = "",
    dedupe_key: str | None = None,
) -> None:
    """Add a timeline line; a missing order is a refusal, found by the foreign key.

    The insert itself proves the order exists, one round trip instead of a
    SELECT first.
    """
    try:
        await add_event(session, order_id, type, detail, dedupe_key)
    except IntegrityError as err:
        if not isinstance(err.orig, ForeignKeyViolation):
            raise
        raise invalid_order(f"order {order_id} does not exist") from None


async def _update_order(session: AsyncSession, order_id: uuid.UUID, **values: object) -> None:
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(updated_at=func.now(), **values)
        .returning(Order.id)
    )
    if result.scalar_one_or_none() is None:
        raise invalid_order(f"order {order_id} does not exist")


async def _change_status(
    session: AsyncSession,
    order_id: uuid.UUID,
    status: OrderStatus,
    failure_reason: str | None,
    detail: str,
) -> None:
    change = (
        update(Order)
        .where(Order.id == order_id)
        .values(status=status, failure_reason=failure_reason, updated_at=func.now())
        .returning(Order.id.label("order_id"))
    )
    # One timeline line per status: a retried set_status rewrites the same
    # values and adds nothing.
    changed = await change_with_line(
        session,
        change,
        f"order.{status.value}",
        detail or failure_reason or "",
        dedupe_key=f"status:{status.value}",
    )
    if not changed:
        raise invalid_order(f"order {order_id} does not exist")
