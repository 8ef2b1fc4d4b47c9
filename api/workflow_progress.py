"""What an order's saga is doing, read from Temporal: its state and the steps it waits on.

Two reads, both per order and both cheap:

- ``describe`` gives the run, its state, and its pending *regular* activities
  (the charge, compensations, notifications) with their attempt, last
  failure and next attempt time.
- A local activity (record_order, reserve_stock, confirm) is invisible there:
  it runs inside a workflow task. When one fails, the SDK records a
  ``core_local_activity`` marker carrying the failure and its data (activity
  type, attempt, completion time, backoff) and, since the back-off is at
  least ``LOCAL_RETRY_THRESHOLD``, starts a server timer of that back-off in
  the same workflow task. A timer started that way and not yet fired is the
  step waiting on its retry; the newest page of the history shows it
  (checked against the dev server; see tests/api/test_order_progress.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ProblemError
from api.schemas.progress import WaitingOn

# How many of the newest events to read for a local step's retry timer. The
# timer is started in the last completed workflow task, and only updates,
# signals and a few task events can follow it; one page is plenty.
HISTORY_TAIL_EVENTS = 50
# A failure message is the worker's exception text: keep it to a line's worth.
MAX_FAILURE_CHARS = 300
_LOCAL_MARKER = "core_local_activity"

_STATES: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
}


@dataclass(frozen=True)
class WaitingActivity:
    """A step the saga waits on, and what retrying it would take."""

    waiting: WaitingOn
    activity_id: str | None  # a regular activity's id (what ResetActivity names)


def waits_on_backoff(step: WaitingOn) -> bool:
    """Failed at least once and waiting for its next attempt: what "retry now" cuts short.

    The one rule for the retry route and the console's "Retry now" button.
    """
    return step.next_attempt_at is not None and (step.attempt > 1 or step.last_failure is not None)


@dataclass(frozen=True)
class SagaView:
    run_id: str | None
    state: str
    steps: list[WaitingActivity]


def unavailable() -> ProblemError:
    return ProblemError(
        503,
        "the order service cannot reach Temporal right now; try again shortly",
        code="temporal-unavailable",
        headers={"Retry-After": "5"},
    )


def _short(message: str) -> str | None:
    text = message.strip()
    if not text:
        return None
    first = text.splitlines()[0]
    return first[:MAX_FAILURE_CHARS]


def _time(ts: object) -> datetime | None:
    # A protobuf Timestamp; an unset one is zero.
    seconds = getattr(ts, "seconds", 0)
    nanos = getattr(ts, "nanos", 0)
    if not seconds and not nanos:
        return None
    return datetime.fromtimestamp(seconds + nanos / 1e9, tz=UTC)


def _regular(info: PendingActivityInfo) -> WaitingActivity:
    failure = _short(info.last_failure.message) if info.HasField("last_failure") else None
    scheduled = info.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
    last_attempt = _time(info.last_attempt_complete_time) or _time(info.last_started_time)
    return WaitingActivity(
        waiting=WaitingOn(
            step=info.activity_type.name,
            kind="activity",
            attempt=max(info.attempt, 1),
            last_failure=failure,
            last_attempt_at=last_attempt,
            next_attempt_at=_time(info.next_attempt_schedule_time) if scheduled else None,
        ),
        activity_id=info.activity_id,
    )


def _seconds(value: object) -> float | None:
    # A Duration or Timestamp in the marker's JSON: {"seconds": s, "nanos": n}.
    if not isinstance(value, dict):
        return None
    try:
        return int(value.get("seconds", 0)) + int(value.get("nanos", 0)) / 1e9
    except (TypeError, ValueError):
        return None


def _marker_data(event: HistoryEvent) -> dict[str, object] | None:
    payloads = event.marker_recorded_event_attributes.details["data"].payloads
    if not payloads:
        return None
    try:
        data = json.loads(payloads[0].data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _local_waiting(events: list[HistoryEvent]) -> WaitingActivity | None:
    """The local step waiting on its retry timer, from the newest events (newest first)."""
    done: set[str] = set()
    for index, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            done.add(event.timer_fired_event_attributes.timer_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            done.add(event.timer_canceled_event_attributes.timer_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timer = event.timer_started_event_attributes
            if timer.timer_id in done:
                continue
            # The back-off timer is started in the same workflow task as the
            # failed attempt's marker, with the marker's back-off as duration.
            for older in events[index + 1 :]:
                if older.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
                    continue
                marker = older.marker_recorded_event_attributes
                if (
                    marker.workflow_task_completed_event_id
                    != timer.workflow_task_completed_event_id
                ):
                    break
                if marker.marker_name != _LOCAL_MARKER or not marker.HasField("failure"):
                    continue
                data = _marker_data(older)
                if data is None:
                    continue
                backoff = _seconds(data.get("backoff"))
                fire = timer.start_to_fire_timeout.ToTimedelta()
                if backoff is None or abs(backoff - fire.total_seconds()) > 0.001:
                    continue
                started = event.event_time.ToDatetime(tzinfo=UTC)
                complete = _seconds(data.get("complete_time"))
                last_at = None if complete is None else datetime.fromtimestamp(complete, tz=UTC)
                failed_attempt = int(str(data.get("attempt", 1)))
                return WaitingActivity(
                    waiting=WaitingOn(
                        step=str(data.get("activity_type", "")),
                        kind="local_activity",
                        # The attempt the step is on: the next one, as a
                        # regular activity in back-off reports it.
                        attempt=failed_attempt + 1,
                        last_failure=_short(marker.failure.message),
                        last_attempt_at=last_at,
                        next_attempt_at=started + fire,
                    ),
                    activity_id=None,
                )
    return None


async def _history_tail(client: Client, workflow_id: str, run_id: str) -> list[HistoryEvent]:
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            maximum_page_size=HISTORY_TAIL_EVENTS,
        )
    )
    return list(response.history.events)


async def read_saga(client: Client, workflow_id: str) -> SagaView:
    """The saga's run, state and waiting steps; state "unknown" when Temporal has no such run.

    Raises a 503 problem when Temporal cannot be reached.
    """
    try:
        description: WorkflowExecutionDescription = await client.get_workflow_handle(
            workflow_id
        ).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return SagaView(run_id=None, state="unknown", steps=[])
        raise unavailable() from err
    state = _STATES.get(description.status, "unknown") if description.status else "unknown"
    if description.status != WorkflowExecutionStatus.RUNNING:
        # A closed saga waits on nothing (its leftovers are history).
        return SagaView(run_id=description.run_id, state=state, steps=[])
    steps = [_regular(info) for info in description.raw_description.pending_activities]
    try:
        tail = await _history_tail(client, workflow_id, description.run_id)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return SagaView(run_id=description.run_id, state=state, steps=steps)
        raise unavailable() from err
    local = _local_waiting(tail)
    if local is not None:
        steps.append(local)
    return SagaView(run_id=description.run_id, state=state, steps=steps)
