"""Shipping in one transaction, against the real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_ORDER
from activities.inventory import InventoryActivities, StockInput
from activities.orders import ShipmentInput
from activities.shipping import ShippingActivities
from core.db import SessionFactory
from core.models import Order, OrderEvent, OrderStatus, Reservation, ReservationStatus
from tests.support.order_factory import create_order


async def _confirmed_order_with_held_stock(sessions: SessionFactory) -> uuid.UUID:
    order = await create_order(sessions)
    await ActivityEnvironment().run(
        InventoryActivities(sessions).reserve, StockInput(str(order.id))
    )
    async with sessions() as session, session.begin():
        await session.execute(
            update(Order).where(Order.id == order.id).values(status=OrderStatus.CONFIRMED)
        )
    return order.id


async def _shipped_state(
    sessions: SessionFactory, order_id: uuid.UUID
) -> tuple[OrderStatus, str | None, list[ReservationStatus], list[str]]:
    async with sessions() as session:
        order = await session.get_one(Order, order_id)
        reservations = await session.scalars(
            select(Reservation.status).where(Reservation.order_id == order_id)
        )
        events = await session.scalars(
            select(OrderEvent.type).where(
                OrderEvent.order_id == order_id, OrderEvent.type == "order.shipped"
            )
        )
        return order.status, order.carrier, list(reservations), list(events)


async def test_ship_records_shipment_commits_stock_and_status_once(
    sessions: SessionFactory,
) -> None:
    order_id = await _confirmed_order_with_held_stock(sessions)
    ship = ShippingActivities(sessions).ship
    shipment = ShipmentInput(str(order_id), carrier="DHL", tracking_number="JD0123")

    await ActivityEnvironment().run(ship, shipment)
    await ActivityEnvironment().run(ship, shipment)  # a retry changes nothing more

    assert await _shipped_state(sessions, order_id) == (
        OrderStatus.SHIPPED,
        "DHL",
        [ReservationStatus.COMMITTED],
        ["order.shipped"],
    )


async def test_ship_refuses_an_unconfirmed_order_and_writes_nothing(
    sessions: SessionFactory,
) -> None:
    order = await create_order(sessions)  # pending: the saga never ships that
    await ActivityEnvironment().run(
        InventoryActivities(sessions).reserve, StockInput(str(order.id))
    )

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            ShippingActivities(sessions).ship, ShipmentInput(str(order.id), carrier="DHL")
        )

    assert refused.value.type == INVALID_ORDER
    assert refused.value.non_retryable
    assert await _shipped_state(sessions, order.id) == (
        OrderStatus.PENDING,
        None,
        [ReservationStatus.HELD],
        [],
    )
