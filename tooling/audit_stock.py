"""The audit's stock checks: the ledger adds up, and ended orders hold no stock."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tooling.audit_report import KEEPS_NOTHING, AuditReport


async def check_stock(session: AsyncSession, report: AuditReport) -> None:
    # initial + restocks = current + held + sold, and the ledger as a whole
    # must add up to what products.stock says is left.
    rows = await session.execute(
        text(
            """
            SELECT p.sku, p.stock,
                   COALESCE(m.supplied, 0) AS supplied,
                   COALESCE(m.ledger, 0) AS ledger,
                   COALESCE(r.held, 0) AS held,
                   COALESCE(r.sold, 0) AS sold
            FROM products p
            LEFT JOIN (
                SELECT product_id,
                       SUM(delta) FILTER (WHERE kind IN ('initial', 'restock')) AS supplied,
                       SUM(delta) AS ledger
                FROM stock_movements GROUP BY product_id
            ) m ON m.product_id = p.id
            LEFT JOIN (
                SELECT product_id,
                       SUM(quantity) FILTER (WHERE status = 'held') AS held,
                       SUM(quantity) FILTER (WHERE status = 'committed') AS sold
                FROM reservations GROUP BY product_id
            ) r ON r.product_id = p.id
            ORDER BY p.sku
            """
        )
    )
    for sku, stock, supplied, ledger, held, sold in rows:
        report.products += 1
        if stock < 0:
            report.violations.append(f"product {sku}: negative stock {stock}")
        if supplied != stock + held + sold:
            report.violations.append(
                f"product {sku}: supplied {supplied} != stock {stock} + held {held} + sold {sold}"
            )
        if ledger != stock:
            report.violations.append(f"product {sku}: ledger sums to {ledger}, stock is {stock}")


async def check_stock_holds(
    session: AsyncSession, report: AuditReport, stuck_after: timedelta, now: datetime
) -> None:
    # Shipped goods have left the warehouse: a shipped or delivered order
    # still holding stock was half-shipped (marked shipped, stock never
    # committed). An ended order that kept nothing must hold nothing. The
    # margin covers a ship whose two writes are not one transaction.
    rows = await session.execute(
        text(
            """
            SELECT o.id, o.status::text, o.updated_at, SUM(r.quantity)
            FROM orders o JOIN reservations r ON r.order_id = o.id
            WHERE r.status = 'held'
              AND o.status IN ('shipped', 'delivered', 'rejected', 'payment_failed', 'cancelled')
            GROUP BY o.id, o.status, o.updated_at
            """
        )
    )
    for order_id, status, updated_at, held in rows:
        if status in KEEPS_NOTHING or now - updated_at > stuck_after:
            report.violations.append(f"order {order_id} ({status}) still holds {held} units")
