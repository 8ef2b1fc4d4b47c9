"""The audit's Temporal side: does each open order's workflow agree with the read model?

The read model is written first (by an activity) and the workflow's own
status (its ``OrderStatus`` search attribute, as ``describe`` returns it from
the workflow's state, not from the lagging visibility store) follows in the
next workflow task. So while a step is in flight the database may be one
transition ahead of the workflow; never behind, and never ahead for long.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from core.db import SessionFactory
from workflows import search_attributes

FINAL = ("delivered", "rejected", "payment_failed", "cancelled")

# The transitions whose database write may be seen before the workflow's.
_NEXT: dict[str, tuple[str, ...]] = {
    "pending": ("confirmed", "rejected", "payment_failed", "cancelled"),
    "confirmed": ("shipped", "cancelled"),
    "shipped": ("delivered",),
}


@dataclass(frozen=True)
class OpenOrder:
    id: uuid.UUID
    status: str  # as the read model says
    updated_at: datetime  # when the row last changed (its status, among others)


@dataclass(frozen=True)
class _Seen:
    running: bool
    execution: str  # "running", "completed", "terminated", ...
    status: str  # the workflow's OrderStatus


async def disagreements(
    temporal: Client,
    sessions: SessionFactory,
    orders: list[OpenOrder],
    *,
    stuck_after: timedelta,
    now: datetime,
) -> list[str]:
    """One line per order whose workflow is gone or says something else for too long."""
    found: list[str] = []
    for order in orders:
        seen = await _workflow(temporal, order.id)
        if _verdict(order, seen, stuck_after, now) is None:
            continue
        # The audit's snapshot was taken before this describe, so a saga that
        # moved on meanwhile looks "behind". Read the row again, after the
        # describe: a healthy read model is then never behind its workflow.
        fresh = await _fresh(sessions, order.id)
        if fresh is None:
            continue  # deleted meanwhile: nothing left to disagree with
        verdict = _verdict(fresh, seen, stuck_after, now)
        if verdict is not None:
            found.append(verdict)
    return found


def _verdict(
    order: OpenOrder, seen: _Seen | None, stuck_after: timedelta, now: datetime
) -> str | None:
    if seen is None or (not seen.running and order.status not in FINAL):
        if order.status in FINAL:
            return None
        return f"order {order.id} is {order.status} but has no running workflow"
    if seen.status == order.status:
        return None
    if seen.running and order.status in _NEXT.get(seen.status, ()):
        if now - order.updated_at <= stuck_after:
            return None  # the workflow has not taken in its last step yet
        return (
            f"order {order.id} is {order.status} since {order.updated_at.isoformat()} "
            f"but its workflow still says {seen.status} (stuck)"
        )
    return (
        f"order {order.id} is {order.status} but its workflow ({seen.execution}) says {seen.status}"
    )


async def _workflow(temporal: Client, order_id: uuid.UUID) -> _Seen | None:
    try:
        description = await temporal.get_workflow_handle(f"order-{order_id}").describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    execution = description.status or WorkflowExecutionStatus.RUNNING
    # Unset only before the workflow's first task: it starts as pending.
    status = description.typed_search_attributes.get(search_attributes.ORDER_STATUS)
    return _Seen(
        running=execution == WorkflowExecutionStatus.RUNNING,
        execution=execution.name.lower(),
        status=status or "pending",
    )


async def _fresh(sessions: SessionFactory, order_id: uuid.UUID) -> OpenOrder | None:
    async with sessions() as session:
        row = (
            await session.execute(
                text("SELECT status::text, updated_at FROM orders WHERE id = :id"),
                {"id": order_id},
            )
        ).first()
    return None if row is None else OpenOrder(order_id, row[0], row[1])
