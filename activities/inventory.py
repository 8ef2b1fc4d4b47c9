"""Stock reservation activities.

``products.stock`` is what can still be reserved. A reservation moves units
from it into a ``reservations`` row (held), and every change is also written
to ``stock_movements``, so an audit can prove
initial + restocks = stock + held + committed.

Deadlocks: every transaction here locks the order row first, then product rows
in ascending product id. Two orders for overlapping products therefore take
their product locks in the same order and can only wait for each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import fault_points
from activities.errors import (
    OUT_OF_STOCK,
    PRODUCT_UNAVAILABLE,
    invalid_order,
    parse_order_id,
)
from core.db import SessionFactory
from core.models import (
    MovementKind,
    Order,
    OrderItem,
    Product,
    Reservation,
    ReservationStatus,
    StockMovement,
)


@dataclass
class StockInput:
    order_id: str


@dataclass
class StockResult:
    order_id: str
    lines: int  # reservation rows changed by this call (0 when it was a no-op)


class InventoryActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="reserve_stock")
    async def reserve(self, input: StockInput) -> StockResult:
        """Hold every line of the order, all or nothing, in one transaction."""
        order_id = parse_order_id(input.order_id)
        await fault_points.reached("reserve_stock:before")
        result = await self._reserve(order_id)
        await fault_points.reached("reserve_stock:after")
        return result

    async def _reserve(self, order_id: uuid.UUID) -> StockResult:
        async with self._sessions() as session, session.begin():
            # The lock in a statement of its own, before the reads: a query
            # that waits for a row lock sees other tables as they were when
            # it started, so a zombie attempt would miss the holds written
            # by the attempt it waited for.
            await _lock_order(session, order_id)
            # The lines, and whether this order already holds stock, in one
            # query. A retry (or a zombie attempt racing it: the order lock
            # serialises them) finds the rows of the attempt that committed
            # and stops.
            held = select(Reservation.id).where(Reservation.order_id == order_id).exists()
            rows = (
                await session.execute(
                    select(OrderItem, held)
                    .where(OrderItem.order_id == order_id)
                    .order_by(OrderItem.product_id)  # lock order: see the module docstring
                )
            ).all()
            if not rows:
                raise invalid_order(f"order {order_id} has no lines")
            if rows[0][1]:
                return StockResult(str(order_id), 0)
            items = [row[0] for row in rows]
            for item in items:
                await _take(session, item)
            # Every line taken: their holds and ledger lines in one statement
            # each (a multi-row INSERT), not two per line.
            await session.execute(
                insert(Reservation),
                [
                    {"order_id": order_id, "product_id": i.product_id, "quantity": i.quantity}
                    for i in items
                ],
            )
            await session.execute(
                insert(StockMovement),
                [
                    {
                        "product_id": i.product_id,
                        "kind": MovementKind.RESERVE,
                        "delta": -i.quantity,
                        "order_id": order_id,
                    }
                    for i in items
                ],
            )
            return StockResult(str(order_id), len(items))

    @activity.defn(name="release_stock")
    async def release(self, input: StockInput) -> StockResult:
        """Give held stock back. Releasing what was never reserved moves no stock."""
        order_id = parse_order_id(input.order_id)
        await fault_points.reached("release_stock:before")
        result = await self._release(order_id)
        await fault_points.reached("release_stock:after")
        return result

    async def _release(self, order_id: uuid.UUID) -> StockResult:
        async with self._sessions() as session, session.begin():
            await _lock_order(session, order_id)
            held = await _held(session, order_id)
            if not held:
                await _close_unreserved(session, order_id)
            for reservation in held:
                await session.execute(
                    update(Product)
                    .where(Product.id == reservation.product_id)
                    .values(stock=Product.stock + reservation.quantity)
                )
                session.add(
                    StockMovement(
                        product_id=reservation.product_id,
                        kind=MovementKind.RELEASE,
                        delta=reservation.quantity,
                        order_id=order_id,
                    )
                )
                reservation.status = ReservationStatus.RELEASED
            return StockResult(str(order_id), len(held))

    @activity.defn(name="commit_stock")
    async def commit(self, input: StockInput) -> StockResult:
        """Mark held stock as sold (at shipping); it already left ``products.stock``."""
        order_id = parse_order_id(input.order_id)
        async with self._sessions() as session, session.begin():
            await _lock_order(session, order_id)
            held = await _held(session, order_id)
            for reservation in held:
                reservation.status = ReservationStatus.COMMITTED
            return StockResult(input.order_id, len(held))


async def _lock_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    found = await session.scalar(select(Order.id).where(Order.id == order_id).with_for_update())
    if found is None:
        raise invalid_order(f"order {order_id} does not exist")


async def _held(session: AsyncSession, order_id: uuid.UUID) -> list[Reservation]:
    rows = await session.scalars(
        select(Reservation)
        .where(Reservation.order_id == order_id, Reservation.status == ReservationStatus.HELD)
        .order_by(Reservation.product_id)
        .with_for_update()
    )
    return list(rows.all())


async def _close_unreserved(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Write ``released`` rows for an order that never held stock.

    A reserve attempt that timed out may still be running on some worker. If
    it committed after this release, its hold would never be given back. With
    these rows in place it finds "already reserved" and does nothing. No stock
    moves, so the ledger and the audit are unaffected.
    """
    if await session.scalar(
        select(func.count()).select_from(Reservation).where(Reservation.order_id == order_id)
    ):
        return  # released or committed earlier: nothing to close
    items = await session.scalars(select(OrderItem).where(OrderItem.order_id == order_id))
    for item in items:
        session.add(
            Reservation(
                order_id=order_id,
                product_id=item.product_id,
                quantity=item.quantity,
                status=ReservationStatus.RELEASED,
            )
        )


async def _take(session: AsyncSession, item: OrderItem) -> None:
    # The conditional decrement is the whole guard against overselling: the
    # row lock makes "check and subtract" one step, and a CHECK constraint
    # backs it up. No read-then-write race is possible.
    taken = await session.scalar(
        update(Product)
        .where(
            Product.id == item.product_id,
            Product.stock >= item.quantity,
            Product.active.is_(True),
        )
        .values(stock=Product.stock - item.quantity)
        .returning(Product.id)
    )
    if taken is None:
        # Raising inside the transaction rolls back the lines already taken.
        raise await _refusal(session, item)


async def _refusal(session: AsyncSession, item: OrderItem) -> ApplicationError:
    active = await session.scalar(select(Product.active).where(Product.id == item.product_id))
    if not active:
        return ApplicationError(
            f"product {item.sku} is no longer available",
            item.sku,
            type=PRODUCT_UNAVAILABLE,
            non_retryable=True,
        )
    return ApplicationError(
        f"not enough stock for {item.sku}", item.sku, type=OUT_OF_STOCK, non_retryable=True
    )
