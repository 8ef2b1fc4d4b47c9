"""An order's rows, written once per (customer, idempotency key).

An order never exists without its lines, its payment record (holding the
payment token) and the first line of its timeline: all go in one transaction.
The rows are unique per (customer, idempotency key), so a retried request
finds the order its first try placed instead of placing a second one, and a
request that reuses a key with another body is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Uuid,
    column,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Base, Order, OrderEvent, OrderItem, OrderStatus, Payment, PaymentStatus
from core.money import total
from core.ordering.errors import IdempotencyConflict
from core.ordering.pricing import PricedLine, price_lines
from core.ordering.request import OrderRequest

# The constraint that makes (customer, idempotency key) name one order.
_IDEMPOTENCY_CONSTRAINT = "uq_orders_customer_id_idempotency_key"


@dataclass(frozen=True)
class NewOrder:
    """The rows ``add_order`` added: the order (with its lines) and its payment."""

    order: Order
    payment: Payment


@dataclass(frozen=True)
class Placed:
    order: Order
    replayed: bool  # an earlier request with the same key placed this order
    # The payment as this request wrote it; None for a replay, whose payment
    # the saga may have moved on since.
    payment: Payment | None = None


async def add_order(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    request: OrderRequest,
    lines: list[PricedLine],
    provider: str,
) -> NewOrder:
    """Add a pending order's rows to the session's transaction; the caller commits.

    ``lines`` are ``request.lines`` as ``price_lines`` priced them.
    """
    currency = lines[0].product.currency
    amount = total([line.unit_price * line.quantity for line in lines], currency)
    order_id = uuid.uuid4()
    order = Order(
        id=order_id,
        customer_id=customer_id,
        status=OrderStatus.PENDING,
        currency=currency,
        total=amount.amount,
        shipping_address=request.address.as_json(),
        idempotency_key=key,
        request_fingerprint=request_fingerprint,
        failure_reason=None,
        needs_attention=False,
        cancel_reason=None,
        carrier=None,
        tracking_number=None,
        items=[
            OrderItem(
                order_id=order_id,
                product_id=line.product.id,
                position=position,
                sku=line.product.sku,
                name=line.product.name,
                quantity=line.quantity,
                unit_price=line.product.price,
            )
            for position, line in enumerate(lines)
        ],
    )
    payment = Payment(
        order_id=order_id,
        provider=provider,
        token=request.payment_token,
        status=PaymentStatus.PENDING,
        amount=amount.amount,
        refunded_amount=0,
        currency=currency,
        charge_id=None,
    )
    event = OrderEvent(
        order_id=order_id,
        type="order.placed",
        detail=f"{len(lines)} line(s), total {amount.format()}",
        dedupe_key="order.placed",
    )
    # Every row in one statement (data-modifying CTEs): one round trip
    # instead of the ORM's four, and no unit of work to run. The lines come
    # as one JSON parameter (jsonb_to_recordset), not as a multi-row VALUES:
    # SQLAlchemy cannot cache a statement whose VALUES rows vary in number,
    # and compiling it again on every checkout cost more than its round
    # trip. The lines' foreign keys are checked at the end of the
    # statement, when the order row exists. The objects above are what the
    # caller reads; they stay out of the session, which never loaded them.
    new_order = (
        insert(Order)
        .values(_columns(order, Order))
        .returning(Order.id, Order.created_at, Order.updated_at)
        .cte("new_order")
    )
    lines_json = [
        {c.name: _json_value(getattr(item, c.name)) for c in _LINE_COLUMNS} for item in order.items
    ]
    line = (
        func.jsonb_to_recordset(literal(lines_json, JSONB))
        .table_valued(*_LINE_COLUMNS)
        .render_derived(name="line", with_types=True)
    )
    new_items = (
        insert(OrderItem)
        .from_select(
            ["order_id", *(c.name for c in _LINE_COLUMNS)],
            # Each line beside the one order row: a cross join, said so.
            select(new_order.c.id, *(line.c[c.name] for c in _LINE_COLUMNS)).select_from(
                new_order.join(line, true())
            ),
        )
        .cte("new_items")
    )
    written = select(new_order.c.created_at, new_order.c.updated_at).add_cte(
        new_items,
        insert(Payment).values(_columns(payment, Payment)).cte("new_payment"),
        insert(OrderEvent).values(_columns(event, OrderEvent)).cte("placed_event"),
    )
    order.created_at, order.updated_at = (await session.execute(written)).one()
    payment.created_at, payment.updated_at = order.created_at, order.updated_at
    return NewOrder(order, payment)


# An order line's columns as the statement reads them from its JSON parameter.
_LINE_COLUMNS = (
    column("product_id", Uuid),
    column("position", Integer),
    column("sku", String),
    column("name", String),
    column("quantity", Integer),
    column("unit_price", BigInteger),
)


def _json_value(value: object) -> object:
    return str(value) if isinstance(value, uuid.UUID) else value


def _columns(row: Base, model: type[Base]) -> dict[str, object]:
    """The column values set on a new, unsaved ORM object (server defaults left out)."""
    return {
        column.key: getattr(row, column.key)
        for column in model.__table__.columns
        if column.key in row.__dict__
    }


async def find_order(session: AsyncSession, customer_id: uuid.UUID, key: str) -> Order | None:
    """The order this customer placed with this idempotency key, if any."""
    found: Order | None = await session.scalar(
        select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key)
    )
    return found


def _is_idempotency_clash(err: IntegrityError) -> bool:
    diag = getattr(err.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == _IDEMPOTENCY_CONSTRAINT


async def place(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    request: OrderRequest,
    provider: str,
) -> Placed:
    """Place the order and commit it, or find the one an earlier request with ``key`` placed.

    ``request_fingerprint`` identifies the request's content: a key that
    already placed an order from another fingerprint raises
    ``IdempotencyConflict``; lines the catalog refuses raise ``InvalidOrder``
    (nothing is written). Commits the session's transaction when it writes;
    a session in autocommit works as well, since the write is one statement.
    """
    order = await find_order(session, customer_id, key)
    if order is None:
        lines = await price_lines(session, request.lines)
        try:
            new = await add_order(
                session,
                customer_id=customer_id,
                key=key,
                request_fingerprint=request_fingerprint,
                request=request,
                lines=lines,
                provider=provider,
            )
            await session.commit()
            return Placed(new.order, replayed=False, payment=new.payment)
        except IntegrityError as err:
            # A concurrent request with the same key won the insert.
            await session.rollback()
            if not _is_idempotency_clash(err):
                raise
            order = await find_order(session, customer_id, key)
            if order is None:
                raise
    if order.request_fingerprint != request_fingerprint:
        raise IdempotencyConflict()
    return Placed(order, replayed=True)
