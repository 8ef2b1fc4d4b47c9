"""The audit: invariants that must hold in any ordersaga database.

``ordersaga audit`` prints this report and exits non-zero on any violation;
the crash and fault tests call :func:`run_audit` after every scenario. Each
check is one SQL query, so the audit reads the database as it is, with no
help from the code that wrote it.

The payment side is read from the payment simulator's own books (what the
"provider" holds), linked to orders by the idempotency keys the payment
activities use (``charge-<order id>``, ``refund-<order id>``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.db import SessionFactory
from tooling.audit_workflows import OpenOrder, disagreements

KEEPS_MONEY = ("confirmed", "shipped", "delivered")
KEEPS_NOTHING = ("rejected", "payment_failed", "cancelled")
# An order in one of these states still has a saga running that must move it
# on (or wait for ship / deliver / cancel); the others are final.
NOT_FINAL = ("pending", "confirmed", "shipped")


@dataclass
class AuditReport:
    products: int = 0
    orders: int = 0
    violations: list[str] = field(default_factory=list)
    needs_attention: list[str] = field(default_factory=list)
    pending: int = 0
    not_final: int = 0  # pending, confirmed or shipped: a workflow still runs for each
    undoing: int = 0  # kept orders whose cancellation is being compensated right now
    # Extra identical copies of a message (same Message-ID and content): the
    # at-least-once delivery's price, reported, not a violation.
    resends: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [
            f"audited {self.products} products and {self.orders} orders "
            f"({self.pending} still pending, {self.not_final} not final, "
            f"{self.undoing} being cancelled)",
        ]
        if self.resends:
            lines.append(f"messages resent (identical copies, same Message-ID): {self.resends}")
        if self.needs_attention:
            lines.append(f"orders marked for attention: {len(self.needs_attention)}")
            lines += [f"  - {order_id}" for order_id in self.needs_attention]
        if self.violations:
            lines.append(f"VIOLATIONS: {len(self.violations)}")
            lines += [f"  - {v}" for v in self.violations]
        else:
            lines.append("no violations")
        return "\n".join(lines)


async def _stock(session: AsyncSession, report: AuditReport) -> None:
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


async def _money(
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


async def _settled_payments(session: AsyncSession, report: AuditReport) -> None:
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


async def _stock_holds(
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


async def _notifications(session: AsyncSession, report: AuditReport) -> None:
    """At-least-once and identical: resends are counted, different messages are violations.

    A resend (a crash after the relay accepted a message, before its row was
    marked sent) delivers the same message again: same Message-ID, same
    recipient, subject and body; mail clients collapse the copies. It is the
    guarantee working, so it is counted, not flagged. Two *different* messages
    are a violation: one Message-ID carrying different content (clients would
    drop one as a duplicate), or one order's notification of a kind delivered
    under two Message-IDs, or two rows for one (order, kind, channel).
    """
    rows = await session.execute(
        text(
            """
            SELECT order_id, kind, channel, COUNT(*) FROM notifications
            GROUP BY order_id, kind, channel HAVING COUNT(*) > 1
            """
        )
    )
    for order_id, kind, channel, count in rows:
        report.violations.append(f"order {order_id}: {count} {kind} notifications by {channel}")
    # What actually reached the mail server (the dev sink), by Message-ID.
    copies = await session.execute(
        text(
            """
            SELECT message_id, COUNT(*) AS copies,
                   COUNT(DISTINCT (rcpt_to, subject, body)) AS versions
            FROM caught_mail
            WHERE message_id IS NOT NULL GROUP BY message_id HAVING COUNT(*) > 1
            """
        )
    )
    for message_id, count, versions in copies:
        if versions > 1:
            report.violations.append(
                f"mail {message_id} delivered {count} times in {versions} different versions"
            )
        else:
            report.resends += count - 1
    # One logical message (the key before "@" is order-<id>-<kind>, see
    # activities.notifications.message_key) must have one Message-ID.
    keys = await session.execute(
        text(
            """
            SELECT substring(message_id FROM '^<(order-[^@]+)@') AS key,
                   COUNT(DISTINCT message_id)
            FROM caught_mail
            WHERE message_id ~ '^<order-[^@]+@'
            GROUP BY key HAVING COUNT(DISTINCT message_id) > 1
            """
        )
    )
    for key, ids in keys:
        report.violations.append(f"message {key} delivered under {ids} Message-IDs")


async def _progress(
    sessions: SessionFactory,
    session: AsyncSession,
    report: AuditReport,
    temporal: Client | None,
    stuck_after: timedelta,
    now: datetime,
    without_workflow: Collection[uuid.UUID],
) -> None:
    attention = await session.execute(
        text("SELECT id FROM orders WHERE needs_attention ORDER BY created_at")
    )
    report.needs_attention = [str(order_id) for (order_id,) in attention]

    # Every order that is not final, not only pending ones: a confirmed or
    # shipped order whose saga is gone (or disagrees with it) can never be
    # shipped, delivered or cancelled again.
    rows = await session.execute(
        text(
            "SELECT id, status::text, created_at, updated_at FROM orders"
            " WHERE status::text = ANY(:open) ORDER BY created_at"
        ),
        {"open": list(NOT_FINAL)},
    )
    open_orders: list[OpenOrder] = []
    for order_id, status, created_at, updated_at in rows:
        open_orders.append(OpenOrder(order_id, status, updated_at))
        if status != "pending":
            continue
        report.pending += 1
        if now - created_at > stuck_after:
            report.violations.append(
                f"order {order_id} pending since {created_at.isoformat()} (stuck)"
            )
    report.not_final = len(open_orders)
    if temporal is not None:
        with_workflow = [o for o in open_orders if o.id not in without_workflow]
        report.violations += await disagreements(
            temporal, sessions, with_workflow, stuck_after=stuck_after, now=now
        )


async def run_audit(
    sessions: SessionFactory,
    *,
    temporal: Client | None = None,
    stuck_after: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
    without_workflow: Collection[uuid.UUID] = (),
) -> AuditReport:
    """Check every invariant; ``temporal`` adds the read model vs workflow check.

    ``stuck_after`` should be the payment deadline plus a margin: no saga may
    stay pending longer than its charge is allowed to take.
    ``without_workflow`` names orders written with no saga behind them (the
    bench's one-transaction floor): every check but the workflow's applies.
    """
    report = AuditReport()
    # One REPEATABLE READ snapshot, so a saga moving on mid-audit cannot make
    # two queries disagree.
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await _stock(session, report)
        now = now or datetime.now(UTC)
        await _money(session, report, stuck_after, now)
        await _settled_payments(session, report)
        await _stock_holds(session, report, stuck_after, now)
        await _notifications(session, report)
        await _progress(sessions, session, report, temporal, stuck_after, now, without_workflow)
    return report
