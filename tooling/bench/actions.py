"""What one order costs Temporal: history events, and billable actions as Temporal Cloud bills.

Read from a workflow's event history, by the rules of Temporal Cloud's
"Actions" page:

- workflow started: 1;
- each activity attempt (started or retried): 1. History keeps one
  ``ActivityTaskStarted`` per activity, carrying the attempt that ran last,
  so an activity that succeeded on its third try costs 3;
- local activities: all those recorded in one workflow task count as 1;
- timer started: 1 each (a local activity waiting for its retry on a server
  timer costs one);
- search-attribute upsert: 1 per command, except one that only sets
  ``TemporalChangeVersion`` (written by ``workflow.patched``), which is exempt;
- update accepted: 1 each; signal: 1 each.

Not in the history, so not counted here: queries, rejected updates (an
update refused by its validator is billed but leaves no event), heartbeats
(the saga's activities send none). ``history_cost`` is pure, unit-tested on
the committed replay histories; ``checkout_cost`` reads a sample of a run's
sagas from the server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from workflows.checkout_io import workflow_id

LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_ATTRIBUTE = "TemporalChangeVersion"
HISTORY_SAMPLE = 20  # the last sagas of a run whose histories are read


@dataclass(frozen=True)
class HistoryCost:
    # Floats: a mean over several orders is fractional.
    events: float
    actions: float
    actions_by_kind: dict[str, float] = field(default_factory=dict)


def _counts_as_upsert(event: HistoryEvent) -> bool:
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    return set(fields.indexed_fields) != {PATCH_ATTRIBUTE}


def history_cost(events: Iterable[HistoryEvent]) -> HistoryCost:
    """The events of one workflow's history and the actions they bill."""
    kinds: Counter[str] = Counter()
    local_tasks: set[int] = set()
    total = 0
    for event in events:
        total += 1
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            kinds["workflow started"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            kinds["activity attempts"] += max(
                1, event.activity_task_started_event_attributes.attempt
            )
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                local_tasks.add(marker.workflow_task_completed_event_id)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            kinds["timers"] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            if _counts_as_upsert(event):
                kinds["search-attribute upserts"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            kinds["updates"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            kinds["signals"] += 1
    if local_tasks:
        kinds["local activity batches"] = len(local_tasks)
    return HistoryCost(
        events=total,
        actions=sum(kinds.values()),
        actions_by_kind={k: float(v) for k, v in kinds.items()},
    )


def mean_cost(costs: Iterable[HistoryCost]) -> HistoryCost | None:
    """The average order's cost, or None without any order."""
    found = list(costs)
    if not found:
        return None
    kinds: dict[str, float] = {}
    for cost in found:
        for kind, count in cost.actions_by_kind.items():
            kinds[kind] = kinds.get(kind, 0.0) + count
    n = len(found)
    return HistoryCost(
        events=sum(c.events for c in found) / n,
        actions=sum(c.actions for c in found) / n,
        actions_by_kind={k: v / n for k, v in sorted(kinds.items())},
    )


async def checkout_cost(client: Client, order_ids: list[str]) -> HistoryCost | None:
    """The mean cost of the last ``HISTORY_SAMPLE`` sagas among ``order_ids``.

    In the bench each saga is confirmed and its mail sent, then waits for the
    shop (ship, deliver): this is a checkout's cost, not a whole order's life
    (docs/PERFORMANCE.md adds ship and deliver from a committed history).
    """
    costs = []
    for order_id in order_ids[-HISTORY_SAMPLE:]:
        history = await client.get_workflow_handle(workflow_id(order_id)).fetch_history()
        costs.append(history_cost(history.events))
    return mean_cost(costs)
