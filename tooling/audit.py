"""The audit: invariants that must hold in any ordersaga database.

``ordersaga audit`` prints this report and exits non-zero on any violation;
the crash and fault tests call :func:`run_audit` after every scenario. Each
check is one SQL query, so the audit reads the database as it is, with no
help from the code that wrote it.

The payment side is read from the payment simulator's own books (what the
"provider" holds), linked to orders by the idempotency keys the payment
activities use (``charge-<order id>``, ``refund-<order id>``).

The checks live by invariant family: tooling/audit_stock.py,
tooling/audit_money.py (with settled payments), tooling/audit_notifications.py,
and progress here (its Temporal side in tooling/audit_workflows.py); the
report in tooling/audit_report.py. ``AuditReport`` and ``KEEPS_MONEY`` are
re-exported here (``x as x``) for the CLI, the bench and the fault tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.db import SessionFactory
from tooling.audit_money import check_money, check_settled_payments
from tooling.audit_notifications import check_notifications
from tooling.audit_report import KEEPS_MONEY as KEEPS_MONEY
from tooling.audit_report import NOT_FINAL
from tooling.audit_report import AuditReport as AuditReport
from tooling.audit_stock import check_stock, check_stock_holds
from tooling.audit_workflows import OpenOrder, disagreements


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
        await check_stock(session, report)
        now = now or datetime.now(UTC)
        await check_money(session, report, stuck_after, now)
        await check_settled_payments(session, report)
        await check_stock_holds(session, report, stuck_after, now)
        await check_notifications(session, report)
        await _progress(sessions, session, report, temporal, stuck_after, now, without_workflow)
    return report
