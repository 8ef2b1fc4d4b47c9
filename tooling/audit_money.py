"""The audit's money checks, read from the payment simulator's own books.

Linked to orders by the idempotency keys the payment activities use
(``charge-<order id>``, ``refund-<order id>``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tooling.audit_report import KEEPS_MONEY, KEEPS_NOTHING, AuditReport


async def check_money(
    session: AsyncSession, report: AuditReport, stuck_after: timedelta, now: datetime
) -> None:
    # undoing_since: when the saga began compensating (its first
    # compensation.started line). A confirmed order being cancelled is refunded
    # before its status turns `cancelled`, so on a live system it is judged by
    # how long the undo takes, not by money it is in the middle of returning.
    rows = await session.execute(
        text(
            """
            SELECT o.id, o.status::text, o.total,
                   COALESCE(c.captured, 0) AS captured,
                   COALESCE(c.captures, 0) AS captures,
                   COALESCE(rf.refunded, 0) AS refunded,
                   (SELECT MIN(e.at) FROM order_events e
                    WHERE e.order_id = o.id AND e.type = 'compensation.started') AS undoing_since
            FROM orders o
            LEFT JOIN (
                SELECT idempotency_key, SUM(amount) AS captured, COUNT(*) AS captures
                FROM simulator_charges WHERE status = 'captured' GROUP BY idempotency_key
            ) c ON c.idempotency_key = 'charge-' || o.id::text
            LEFT JOIN (
                SELECT ch.idempotency_key, SUM(r.amount) AS refunded
                FROM simulator_refunds r JOIN simulator_charges ch ON ch.id = r.charge_id
                GROUP BY ch.idempotency_key
            ) rf ON rf.idempotency_key = 'charge-' || o.id::text
            """
        )
    )
    for order_id, status, total, captured, captures, refunded, undoing_since in rows:
        report.orders += 1
        kept = captured - refunded
        if captures > 1:
            report.violations.append(f"order {order_id}: {captures} captures")
        if status in KEEPS_MONEY and undoing_since is not None:
            report.undoing += 1
            if now - undoing_since > stuck_after:
                report.violations.append(
                    f"order {order_id} ({status}) being cancelled since "
                    f"{undoing_since.isoformat()} (stuck)"
                )
        elif status in KEEPS_MONEY and kept != total:
            report.violations.append(
                f"order {order_id} ({status}): kept {kept} but total is {total}"
            )
        if status in KEEPS_NOTHING and kept != 0:
            report.violations.append(f"order {order_id} ({status}): kept {kept}, expected 0")
        if refunded > captured:
            report.violations.append(
                f"order {order_id}: refunded {refunded} more than captured {captured}"
            )

    # A refund must belong to a captured charge (not a declined one).
    orphans = await session.execute(
        text(
            """
            SELECT r.id FROM simulator_refunds r
            LEFT JOIN simulator_charges ch ON ch.id = r.charge_id
            WHERE ch.id IS NULL OR ch.status <> 'captured'
            """
        )
    )
    for (refund_id,) in orphans:
        report.violations.append(f"refund {refund_id} does not belong to a capture")

    # A capture must belong to an order (a charge key without an order is money
    # taken from a customer that no order accounts for).
    strays = await session.execute(
        text(
            """
            SELECT ch.id FROM simulator_charges ch
            LEFT JOIN orders o ON 'charge-' || o.id::text = ch.idempotency_key
            WHERE ch.status = 'captured' AND o.id IS NULL
            """
        )
    )
    for (charge_id,) in strays:
        report.violations.append(f"capture {charge_id} belongs to no order")


async def check_settled_payments(session: AsyncSession, report: AuditReport) -> None:
    # Past pending, an order's payment is settled (captured, refunded,
    # voided, declined or not_charged) and its card token is gone: the token
    # is needed for the charge only. Both are written in the same transaction
    # as the status, so there is no window to allow for.
    rows = await session.execute(
        text(
            """
            SELECT o.id, o.status::text, p.status::text, p.token IS NOT NULL
            FROM orders o JOIN payments p ON p.order_id = o.id
            WHERE o.status <> 'pending' AND (p.token IS NOT NULL OR p.status = 'pending')
            """
        )
    )
    for order_id, status, payment_status, has_token in rows:
        if payment_status == "pending":
            report.violations.append(f"order {order_id} ({status}): payment never settled")
        if has_token:
            report.violations.append(f"order {order_id} ({status}) keeps its card token")
