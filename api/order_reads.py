"""Reading orders: one order with its payment, its public form, and the owner check.

Reads come from the PostgreSQL read model that the saga's activities keep
current, so showing an order never asks Temporal. The routes that use these
are in api/orders.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from api.deps import CurrentUser, ResourcesDep
from api.errors import ProblemError
from api.schemas.orders import OrderItemPublic, OrderPublic, PaymentPublic
from core.db import SessionFactory, autocommit
from core.models import Order, OrderItem, Payment


@dataclass(frozen=True)
class OrderRecord:
    """An order with its payment record, loaded in one short session."""

    order: Order
    payment: Payment | None
    # The order's lines when they were not loaded with it (see load_order).
    items: Sequence[OrderItem] | None = None


async def load_order(
    sessions: SessionFactory, order_id: uuid.UUID, *, lines_from: Order | None = None
) -> OrderRecord | None:
    """The order and its payment as they are now, in one query (its lines in one more).

    ``lines_from`` is the same order as read or written before: lines never
    change once placed, so they are taken from it instead of read again.
    """
    query = (
        select(Order, Payment)
        .outerjoin(Payment, Payment.order_id == Order.id)
        .where(Order.id == order_id)
    )
    if lines_from is not None:
        query = query.options(raiseload(Order.items))
    # A fresh session each time: callers re-read after the saga moved on.
    async with autocommit(sessions) as session:
        row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return OrderRecord(row[0], row[1], None if lines_from is None else lines_from.items)


async def with_payments(session: AsyncSession, orders: Sequence[Order]) -> list[OrderRecord]:
    """A page of orders with their payments, read in one more query."""
    payments = {
        p.order_id: p
        for p in await session.scalars(
            select(Payment).where(Payment.order_id.in_([o.id for o in orders]))
        )
    }
    return [OrderRecord(order, payments.get(order.id)) for order in orders]


def to_public(record: OrderRecord) -> OrderPublic:
    order, payment = record.order, record.payment
    return OrderPublic(
        id=order.id,
        status=order.status.value,
        items=[
            OrderItemPublic(
                product_id=item.product_id,
                sku=item.sku,
                name=item.name,
                quantity=item.quantity,
                unit_price=item.unit_price,
            )
            for item in (order.items if record.items is None else record.items)
        ],
        total=order.total,
        currency=order.currency,
        shipping_address=order.shipping_address,
        # The token is never part of an answer.
        payment=None
        if payment is None
        else PaymentPublic(
            status=payment.status,
            amount=payment.amount,
            refunded_amount=payment.refunded_amount,
        ),
        failure_reason=order.failure_reason,
        needs_attention=order.needs_attention,
        cancel_reason=order.cancel_reason,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def order_not_found() -> ProblemError:
    """The one answer for an order that is missing, malformed or not the caller's."""
    return ProblemError(404, "no order with this id", code="order-not-found")


def parse_order_id(order_id: str) -> uuid.UUID:
    """The order id of a path; a malformed one answers like a missing order."""
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise order_not_found() from None


async def owned_order(
    order_id: str, principal: CurrentUser, resources: ResourcesDep
) -> OrderRecord:
    """The order at this path if the caller owns it or is an admin; 404 otherwise.

    Someone else's order answers exactly like a missing one, so order IDs
    cannot be probed.
    """
    record = await load_order(resources.sessions, parse_order_id(order_id))
    if record is None or not (principal.is_admin or record.order.customer_id == principal.user_id):
        raise order_not_found()
    return record


OwnedOrder = Annotated[OrderRecord, Depends(owned_order)]


@dataclass(frozen=True)
class Placement:
    """What a checkout placed: its order, and whether an earlier try with its key did."""

    order_id: uuid.UUID
    replayed: bool  # an earlier request with the same key made this order
    # The order as this request wrote it (None for a replay): what a client
    # that does not wait is answered with, without reading it back.
    written: OrderRecord | None = None


async def placed_order_answer(
    sessions: SessionFactory, placement: Placement, wait: int | None, response: Response
) -> OrderPublic:
    """The answer to a checkout (``POST /orders`` and ``POST /cart/checkout`` alike).

    202 with the order as it is, or 200 once it has settled when the client
    asked to wait (``Prefer: wait``); ``Location`` names the order, and a
    retry with the same key says it was a replay.

    ``placement.written`` is the order as this request just wrote it: a client that
    did not wait is answered with it as is (pending; the saga's progress is
    for ``GET /orders/{id}``), saving a read on the hot path. After a wait,
    or for a replay, the order is read back, since the saga has moved it on;
    after a wait its lines still come from what was written.
    """
    written = placement.written
    response.headers["Location"] = f"/orders/{placement.order_id}"
    if placement.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    record = written if wait is None and written is not None else None
    if record is None:
        lines = None if written is None else written.order
        record = await load_order(sessions, placement.order_id, lines_from=lines)
    assert record is not None  # orders are never deleted
    if wait is not None:
        response.headers["Preference-Applied"] = f"wait={wait}"
        if record.order.status.settled:
            response.status_code = 200
    return to_public(record)
