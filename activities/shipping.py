"""Shipping: the hand-over to the carrier, recorded in one transaction.

The shipment (carrier, tracking number), the stock commit (held units become
sold) and the order's ``shipped`` status are one fact: the parcel has left.
Written apart, a failure between them left the order ``shipped`` in the
database, ``confirmed`` in its saga and its stock still held. Here they
commit together or not at all, and a retry of a shipment that committed
changes nothing (the order is already ``shipped``), so the saga can retry
this until it is done.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from temporalio import activity

from activities import fault_points
from activities.errors import invalid_order, parse_order_id
from activities.inventory import _held, _lock_order
from activities.orders import ShipmentInput, _change_status, _update_order
from core.db import SessionFactory
from core.models import Order, OrderStatus, ReservationStatus

# The states from which a retry finds the shipment already recorded.
_ALREADY_SHIPPED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)


class ShippingActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="ship_order")
    async def ship(self, input: ShipmentInput) -> None:
        """Record the shipment, commit the held stock and mark the order shipped, at once."""
        order_id = parse_order_id(input.order_id)
        await fault_points.reached("ship_order:before")
        await self._ship(order_id, input)
        await fault_points.reached("ship_order:after")

    async def _ship(self, order_id: uuid.UUID, input: ShipmentInput) -> None:
        async with self._sessions() as session, session.begin():
            # The order lock serialises this with a retry racing it (a zombie
            # attempt) and with release_stock, like every stock change.
            await _lock_order(session, order_id)
            status = await session.scalar(select(Order.status).where(Order.id == order_id))
            if status in _ALREADY_SHIPPED:
                return  # an earlier attempt committed: nothing more to do
            if status is not OrderStatus.CONFIRMED:
                # The saga ships only a confirmed order, and confirms it in the
                # database first: anything else is an inconsistency no retry fixes.
                raise invalid_order(f"order {order_id} is {status}, not confirmed")
            for reservation in await _held(session, order_id):
                reservation.status = ReservationStatus.COMMITTED
            await _update_order(
                session, order_id, carrier=input.carrier, tracking_number=input.tracking_number
            )
            detail = " ".join(p for p in (input.carrier, input.tracking_number) if p)
            await _change_status(session, order_id, OrderStatus.SHIPPED, None, detail)
