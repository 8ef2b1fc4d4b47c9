"""Timeline lines the saga writes itself (compensations, unsent messages)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.steps import call

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities, TimelineEvent
    from workflows import retry_policies as policies
    from workflows.failures import describe


async def record_event(order_id: str, type: str, detail: str) -> None:
    """A timeline line written by the workflow; best effort, never blocks the saga."""
    try:
        await call(
            OrderActivities.record_event,
            # The dedupe key makes a retried write (and a replayed one) add one line.
            TimelineEvent(order_id, type, detail, dedupe_key=f"{type}:{detail}"),
            policies.RECORD,
        )
    except ActivityError as err:
        workflow.logger.warning(
            "order %s: timeline event %s not recorded (%s)", order_id, type, describe(err)
        )
