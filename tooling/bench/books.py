"""Correctness at the end of a run: a fast wrong run must not pass.

For the database of each stack it runs the product audit (``tooling.audit``)
and checks the books of every order the bench placed:

- every order is ``confirmed`` and its confirmation mail was sent;
- exactly one capture at the provider (the simulator's books) per order, of
  exactly the order's total, and ordersaga's payment record says captured;
- each product's stock went down by exactly the units ordered, and no order
  exists that the bench did not place.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from temporalio.client import Client

from activities.messages import NotificationKind
from activities.payments import charge_key
from core.db import SessionFactory
from core.models import (
    Notification,
    NotificationStatus,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    SimulatorCharge,
)
from tooling.audit import run_audit

# No saga of the run may still be pending after this; the bench waits for
# every saga before it checks, so this only guards the audit's own rule.
STUCK_AFTER = timedelta(minutes=5)
MAX_LISTED = 20  # problems listed one by one; the rest are counted


@dataclass
class Books:
    """What the checks found on one stack's database."""

    stack: str
    orders: int = 0
    problems: list[str] = field(default_factory=list)
    audit_violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.audit_violations

    def add(self, problem: str) -> None:
        self.problems.append(problem)


async def check_books(
    stack: str,
    sessions: SessionFactory,
    *,
    order_ids: Collection[str],
    initial_stock: Mapping[str, int],
    temporal: Client | None = None,
    sagaless: Collection[str] = (),
) -> Books:
    """Check the orders ``order_ids`` against products created with ``initial_stock``."""
    books = Books(stack, orders=len(order_ids))
    expected = {uuid.UUID(i) for i in order_ids}
    async with sessions() as session:
        orders = {
            order_id: (status, total)
            for order_id, status, total in await session.execute(
                select(Order.id, Order.status, Order.total)
            )
        }
        payments = {
            order_id: (status, amount)
            for order_id, status, amount in await session.execute(
                select(Payment.order_id, Payment.status, Payment.amount)
            )
        }
        captures: dict[str, list[int]] = {}
        for key, amount in await session.execute(
            select(SimulatorCharge.idempotency_key, SimulatorCharge.amount).where(
                SimulatorCharge.status == "captured"
            )
        ):
            captures.setdefault(key, []).append(amount)
        mailed = set(
            await session.scalars(
                select(Notification.order_id).where(
                    Notification.kind == NotificationKind.CONFIRMED.value,
                    Notification.channel == "email",
                    Notification.status == NotificationStatus.SENT,
                )
            )
        )
        ordered = {
            str(product_id): int(units)
            for product_id, units in await session.execute(
                select(OrderItem.product_id, func.sum(OrderItem.quantity)).group_by(
                    OrderItem.product_id
                )
            )
        }
        stock = {
            str(pid): left for pid, left in await session.execute(select(Product.id, Product.stock))
        }

    for order_id in sorted(expected - orders.keys()):
        books.add(f"order {order_id} was accepted but is not in the database")
    for order_id in sorted(orders.keys() - expected):
        books.add(f"order {order_id} is in the database but the bench never placed it")
    for order_id in sorted(expected & orders.keys()):
        status, total = orders[order_id]
        if status is not OrderStatus.CONFIRMED:
            books.add(f"order {order_id} is {status.value}, expected confirmed")
        if order_id not in mailed:
            books.add(f"order {order_id}: no confirmation mail sent")
        taken = captures.get(charge_key(order_id), [])
        if len(taken) != 1:
            books.add(f"order {order_id}: {len(taken)} captures, expected exactly 1")
        elif taken[0] != total:
            books.add(f"order {order_id}: captured {taken[0]} but the total is {total}")
        pay_status, pay_amount = payments.get(order_id, (None, None))
        if pay_status is not PaymentStatus.CAPTURED or pay_amount != total:
            books.add(f"order {order_id}: payment record {pay_status} of {pay_amount}")
    for product_id, initial in initial_stock.items():
        units = ordered.get(product_id, 0)
        left = stock.get(product_id)
        if left != initial - units:
            books.add(f"product {product_id}: stock {left}, expected {initial} - {units} ordered")

    report = await run_audit(
        sessions,
        temporal=temporal,
        stuck_after=STUCK_AFTER,
        without_workflow={uuid.UUID(i) for i in sagaless},
    )
    books.audit_violations = report.violations
    return books


def summarize(books: Books) -> list[str]:
    """The problems as lines for the terminal, at most MAX_LISTED of each kind."""
    lines: list[str] = []
    for title, items in (("books", books.problems), ("audit", books.audit_violations)):
        for item in items[:MAX_LISTED]:
            lines.append(f"{books.stack} {title}: {item}")
        if len(items) > MAX_LISTED:
            lines.append(f"{books.stack} {title}: ... and {len(items) - MAX_LISTED} more")
    return lines
