"""Stock reservation against the real PostgreSQL: all-or-nothing, idempotent, no oversell."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_ORDER, OUT_OF_STOCK, PRODUCT_UNAVAILABLE
from activities.inventory import InventoryActivities, StockInput
from core.db import SessionFactory
from core.models import OrderItem, Product, Reservation, ReservationStatus, StockMovement
from tests.support.factories import create_product
from tests.support.order_factory import create_order


async def _stock(sessions: SessionFactory, product: Product) -> int:
    async with sessions() as session:
        return await session.scalar(select(Product.stock).where(Product.id == product.id)) or 0


async def _reservations(sessions: SessionFactory, order_id: uuid.UUID) -> dict[uuid.UUID, str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Reservation.product_id, Reservation.status).where(
                Reservation.order_id == order_id
            )
        )
        return {product_id: status.value for product_id, status in rows.all()}


async def _ledger_sum(sessions: SessionFactory, product: Product) -> int:
    """What the stock ledger says is on the shelf: initial + every movement."""
    async with sessions() as session:
        total = await session.scalar(
            select(func.sum(StockMovement.delta)).where(StockMovement.product_id == product.id)
        )
        return int(total or 0)


async def test_reserve_holds_every_line_and_a_retry_changes_nothing(
    sessions: SessionFactory,
) -> None:
    a = await create_product(sessions, stock=5)
    b = await create_product(sessions, stock=3)
    order = await create_order(sessions, lines=[(a, 2), (b, 3)])
    acts, env = InventoryActivities(sessions), ActivityEnvironment()

    first = await env.run(acts.reserve, StockInput(str(order.id)))
    retry = await env.run(acts.reserve, StockInput(str(order.id)))

    assert (first.lines, retry.lines) == (2, 0)
    assert (await _stock(sessions, a), await _stock(sessions, b)) == (3, 0)
    assert await _reservations(sessions, order.id) == {a.id: "held", b.id: "held"}
    assert await _ledger_sum(sessions, a) == 3
    assert await _ledger_sum(sessions, b) == 0


@pytest.mark.parametrize(
    ("stock", "active", "expected"),
    [(1, True, OUT_OF_STOCK), (10, False, PRODUCT_UNAVAILABLE)],
)
async def test_one_bad_line_rolls_back_the_whole_order(
    sessions: SessionFactory, stock: int, active: bool, expected: str
) -> None:
    good = await create_product(sessions, stock=5)
    bad = await create_product(sessions, stock=stock, sku=f"BAD-{uuid.uuid4().hex[:6]}")
    order = await create_order(sessions, lines=[(good, 1), (bad, 2)])
    if not active:
        async with sessions() as session, session.begin():
            (await session.get_one(Product, bad.id)).active = False

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            InventoryActivities(sessions).reserve, StockInput(str(order.id))
        )

    assert caught.value.type == expected
    assert caught.value.non_retryable
    assert caught.value.details == (bad.sku,)
    assert (await _stock(sessions, good), await _stock(sessions, bad)) == (5, stock)
    assert await _reservations(sessions, order.id) == {}


async def test_release_gives_stock_back_once(sessions: SessionFactory) -> None:
    product = await create_product(sessions, stock=4)
    order = await create_order(sessions, lines=[(product, 3)])
    acts, env = InventoryActivities(sessions), ActivityEnvironment()
    await env.run(acts.reserve, StockInput(str(order.id)))

    first = await env.run(acts.release, StockInput(str(order.id)))
    again = await env.run(acts.release, StockInput(str(order.id)))

    assert (first.lines, again.lines) == (1, 0)
    assert await _stock(sessions, product) == 4
    assert await _ledger_sum(sessions, product) == 4
    assert await _reservations(sessions, order.id) == {product.id: "released"}


async def test_release_of_what_was_never_reserved_is_a_no_op(sessions: SessionFactory) -> None:
    product = await create_product(sessions, stock=4)
    order = await create_order(sessions, lines=[(product, 3)])

    result = await ActivityEnvironment().run(
        InventoryActivities(sessions).release, StockInput(str(order.id))
    )

    assert result.lines == 0
    assert await _stock(sessions, product) == 4
    # A reserve attempt that was still in flight and lands after the release
    # (a timed-out attempt on another worker) must not hold stock any more.
    late = await ActivityEnvironment().run(
        InventoryActivities(sessions).reserve, StockInput(str(order.id))
    )
    assert late.lines == 0
    assert await _stock(sessions, product) == 4
    assert await _ledger_sum(sessions, product) == 4


async def test_commit_marks_held_stock_sold_without_touching_stock(
    sessions: SessionFactory,
) -> None:
    product = await create_product(sessions, stock=4)
    order = await create_order(sessions, lines=[(product, 3)])
    acts, env = InventoryActivities(sessions), ActivityEnvironment()
    await env.run(acts.reserve, StockInput(str(order.id)))

    first = await env.run(acts.commit, StockInput(str(order.id)))
    again = await env.run(acts.commit, StockInput(str(order.id)))
    # Committed stock is sold: a late release must not put it back on the shelf.
    late_release = await env.run(acts.release, StockInput(str(order.id)))

    assert (first.lines, again.lines, late_release.lines) == (1, 0, 0)
    assert await _stock(sessions, product) == 1
    assert await _reservations(sessions, order.id) == {product.id: ReservationStatus.COMMITTED}


async def test_concurrent_orders_for_the_last_units_never_oversell(
    sessions: SessionFactory,
) -> None:
    last_units, buyers = 3, 8
    # Two products, ordered in opposite line order by alternate buyers, so a
    # lock-order bug would show up as a deadlock error.
    x = await create_product(sessions, stock=last_units)
    y = await create_product(sessions, stock=100)
    orders = [
        await create_order(sessions, lines=[(x, 1), (y, 1)] if i % 2 else [(y, 1), (x, 1)])
        for i in range(buyers)
    ]
    acts = InventoryActivities(sessions)

    results = await asyncio.gather(
        *(ActivityEnvironment().run(acts.reserve, StockInput(str(o.id))) for o in orders),
        return_exceptions=True,
    )

    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == last_units
    assert all(isinstance(e, ApplicationError) and e.type == OUT_OF_STOCK for e in lost)
    assert await _stock(sessions, x) == 0
    assert await _stock(sessions, y) == 100 - last_units
    assert await _ledger_sum(sessions, x) == 0
    async with sessions() as session:
        held = await session.scalar(
            select(func.count()).select_from(Reservation).where(Reservation.product_id == x.id)
        )
    assert held == last_units


async def test_reserve_refuses_an_order_without_lines(sessions: SessionFactory) -> None:
    order = await create_order(sessions)
    async with sessions() as session, session.begin():
        for item in (await session.scalars(select(OrderItem))).all():
            await session.delete(item)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            InventoryActivities(sessions).reserve, StockInput(str(order.id))
        )
    assert caught.value.type == INVALID_ORDER
    assert caught.value.non_retryable
