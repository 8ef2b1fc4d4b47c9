"""Replay the recorded histories against the current ``OrderWorkflow``.

Every committed history must still replay: a change that would make running
workflows diverge from their history (a step added, removed or reordered)
fails here before it reaches a worker. After an intended, compatible change
re-record them with::

    make record-histories          # or: .venv/bin/python -m tests.workflows.record_histories
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, CheckoutResult
from workflows.versions import (
    ATOMIC_SHIP,
    CANCELLABLE_CHARGE,
    CLEAR_ATTENTION_ON_RECOVERY,
    LOCAL_FORWARD_STEPS,
    REPORT_STUCK_COMPENSATION,
)

# This module defines a workflow (the altered one below), so the sandbox
# re-imports it; everything that is not workflow code is passed through.
with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, StockInput
    from activities.payments import ChargeInput, PaymentActivities
    from tests.workflows.record_histories import HISTORIES, SCENARIOS
    from workflows import retry_policies as policies

# The corpus of the first version: recorded before any workflow.patched change
# (compensation in reverse, the attention flag never cleared).
V1 = "v1"
# The corpus of the second: CLEAR_ATTENTION_ON_RECOVERY, every step a regular
# activity (before LOCAL_FORWARD_STEPS).
V2 = "v2"
# The corpus of the third: LOCAL_FORWARD_STEPS with the charge among the local
# steps, ship as two activities (before CANCELLABLE_CHARGE, ATOMIC_SHIP and
# REPORT_STUCK_COMPENSATION). Today's cancelled_before_pivot cancels a charge
# that the provider keeps failing, so it also holds the late-capture recheck.
V3 = "v3"
# The steps up to the pivot, as the activity types a regular run schedules.
FORWARD_STEPS = ["record_order", "reserve_stock", "charge_payment", "set_order_status"]

# The end state each history must show, by file name.
END_STATES = {
    "delivered": "delivered",
    "rejected": "rejected",
    "payment_failed": "payment_failed",
    "cancelled_before_pivot": "cancelled",
    "cancelled_after_confirm": "cancelled",
    "needs_attention": "payment_failed",
}


# Histories of earlier workflow versions (tests/workflows/histories/<version>/), kept
# when a workflow.patched change was recorded: running workflows of those
# versions must still replay on today's code.
OLDER_VERSIONS = sorted(
    path.relative_to(HISTORIES).with_suffix("").as_posix() for path in HISTORIES.glob("*/*.json")
)


def _load(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    return WorkflowHistory.from_json(f"order-history-{name}", path.read_text())


def _patches(history: WorkflowHistory) -> set[str]:
    """The workflow.patched ids whose markers the history holds."""
    found = set()
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                data = DataConverter.default.payload_converter.from_payload(
                    details["patch-data"].payloads[0], dict
                )
                found.add(data["id"])
    return found


def _last_order_status(events: list[HistoryEvent]) -> str | None:
    status = None
    for event in events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            payload = fields.indexed_fields.get("OrderStatus")
            if payload is not None:
                status = DataConverter.default.payload_converter.from_payload(payload, str)
    return status


def test_there_is_one_history_per_end_state() -> None:
    assert set(END_STATES) == set(SCENARIOS)
    assert {path.stem for path in Path(HISTORIES).glob("*.json")} == set(END_STATES)


@pytest.mark.parametrize("name", sorted(END_STATES))
async def test_history_replays(name: str) -> None:
    history = _load(name)
    assert _last_order_status(list(history.events)) == END_STATES[name]

    result = await Replayer(workflows=[OrderWorkflow]).replay_workflow(history)

    assert result.replay_failure is None


@pytest.mark.parametrize("name", OLDER_VERSIONS)
async def test_history_of_an_earlier_version_replays(name: str) -> None:
    history = _load(name)
    assert _last_order_status(list(history.events)) == END_STATES[name.split("/")[-1]]

    result = await Replayer(workflows=[OrderWorkflow]).replay_workflow(history)

    assert result.replay_failure is None


def _activities(history: WorkflowHistory) -> list[str]:
    """The activity types the workflow scheduled, in order."""
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def _needs_attention_values(history: WorkflowHistory) -> list[bool]:
    """Each NeedsAttention value the workflow upserted, in order."""
    values = []
    for event in history.events:
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            payload = fields.indexed_fields.get("NeedsAttention")
            if payload is not None:
                values.append(DataConverter.default.payload_converter.from_payload(payload, bool))
    return values


def test_the_corpus_holds_both_sides_of_every_version_change() -> None:
    for version in (V1, V2, V3):
        kept = [name for name in OLDER_VERSIONS if name.startswith(f"{version}/")]
        assert {name.split("/")[-1] for name in kept} == set(END_STATES), version

    # CLEAR_ATTENTION_ON_RECOVERY is reached only when a flagged compensation
    # recovers: the needs_attention history since v2 carries its marker and
    # the clearing, the first version's the same end state without either.
    for name in ("needs_attention", f"{V2}/needs_attention", f"{V3}/needs_attention"):
        assert CLEAR_ATTENTION_ON_RECOVERY in _patches(_load(name)), name
        assert _activities(_load(name)).count("clear_order_attention") == 1, name
    old = _load(f"{V1}/needs_attention")
    assert CLEAR_ATTENTION_ON_RECOVERY not in _patches(old)
    assert "clear_order_attention" not in _activities(old)

    # LOCAL_FORWARD_STEPS is reached by every saga: today's histories run the
    # steps up to the pivot as local activities (markers, no scheduled
    # activity); the earlier versions' schedule each of them.
    for name in END_STATES:
        current, before = _load(name), _load(f"{V2}/{name}")
        assert LOCAL_FORWARD_STEPS in _patches(current), name
        assert _local_activity_markers(current) >= 2, name  # record_order, reserve_stock
        assert not set(FORWARD_STEPS[:2]) & set(_activities(current)), name
        assert _local_activity_markers(before) == 0, name
        assert _activities(before)[:2] == FORWARD_STEPS[:2], name

    # CANCELLABLE_CHARGE is reached by every saga: today's histories schedule
    # the charge as a regular activity, v3's ran it locally. A cancel before
    # the pivot asks the server to stop the charge in flight.
    for name in END_STATES:
        current, before = _load(name), _load(f"{V3}/{name}")
        assert CANCELLABLE_CHARGE in _patches(current), name
        assert CANCELLABLE_CHARGE not in _patches(before), name
        charged = "charge_payment" in _activities(current)
        assert charged == (name != "rejected"), name
        assert "charge_payment" not in _activities(before), name
    assert _cancel_requests(_load("cancelled_before_pivot")) == 1
    assert _cancel_requests(_load(f"{V3}/cancelled_before_pivot")) == 0
    # That charge ended without an answer, so the refund ran once more after
    # a timer (the late-capture recheck); a v3 history never does.
    assert _activities(_load("cancelled_before_pivot")).count("refund_payment") == 2
    assert _activities(_load(f"{V3}/cancelled_before_pivot")).count("refund_payment") == 1

    # ATOMIC_SHIP is reached by a ship: one ship_order today, v3's two steps.
    assert ATOMIC_SHIP in _patches(_load("delivered"))
    assert "ship_order" in _activities(_load("delivered"))
    assert not {"record_shipment", "commit_stock"} & set(_activities(_load("delivered")))
    shipped_before = _activities(_load(f"{V3}/delivered"))
    assert {"record_shipment", "commit_stock"} <= set(shipped_before)
    assert "ship_order" not in shipped_before

    # REPORT_STUCK_COMPENSATION is reached when a compensation is refused in
    # its slow retries: only today's needs_attention history has one.
    for name in END_STATES:
        assert (REPORT_STUCK_COMPENSATION in _patches(_load(name))) == (
            name == "needs_attention"
        ), name

    # No history holds a marker of a change that is no longer in the code.
    known = {
        CLEAR_ATTENTION_ON_RECOVERY,
        LOCAL_FORWARD_STEPS,
        CANCELLABLE_CHARGE,
        ATOMIC_SHIP,
        REPORT_STUCK_COMPENSATION,
    }
    for name in [*END_STATES, *OLDER_VERSIONS]:
        assert _patches(_load(name)) <= known, name
    for name in [*(f"{V2}/{n}" for n in END_STATES), *(f"{V3}/{n}" for n in END_STATES)]:
        assert (CLEAR_ATTENTION_ON_RECOVERY in _patches(_load(name))) == name.endswith(
            "needs_attention"
        ), name
    for name in END_STATES:
        assert _patches(_load(f"{V1}/{name}")) == set(), name


def _cancel_requests(history: WorkflowHistory) -> int:
    """How many activity cancellations the workflow asked for."""
    return sum(
        1
        for event in history.events
        if event.HasField("activity_task_cancel_requested_event_attributes")
    )


def _local_activity_markers(history: WorkflowHistory) -> int:
    """How many local activity results the history records."""
    return sum(
        1
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )


@pytest.mark.parametrize("name", sorted(set(END_STATES) - {"delivered"}))
@pytest.mark.parametrize("version", ["", f"{V1}/", f"{V2}/", f"{V3}/"])
def test_every_corpus_compensates_in_reverse(version: str, name: str) -> None:
    # The product contract: refund (or void) before the stock goes back.
    # (A rejected order was never charged, so it only releases.)
    undo = [
        a
        for a in _activities(_load(f"{version}{name}"))
        if a in ("refund_payment", "release_stock")
    ]
    expected = ["release_stock"] if name == "rejected" else ["refund_payment", "release_stock"]
    # dict.fromkeys: a compensation retried as a new activity is scheduled again.
    assert list(dict.fromkeys(undo)) == expected, name


def test_needs_attention_history_flags_the_order_then_clears_it() -> None:
    assert _needs_attention_values(_load("needs_attention")) == [True, False]
    # The first version left the flag set.
    assert _needs_attention_values(_load(f"{V1}/needs_attention")) == [True]


@workflow.defn(name="OrderWorkflow")
class ChargeBeforeReserveWorkflow(OrderWorkflow):
    """A deliberately incompatible change: the charge moved ahead of the reservation."""

    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        await workflow.execute_activity_method(
            PaymentActivities.charge,
            ChargeInput(input.order_id),
            start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
        )
        await workflow.execute_activity_method(
            InventoryActivities.reserve,
            StockInput(input.order_id),
            start_to_close_timeout=policies.DATABASE_STEP_TIMEOUT,
        )
        return await super().run(input)


async def test_a_reordered_workflow_is_caught_on_replay() -> None:
    replayer = Replayer(workflows=[ChargeBeforeReserveWorkflow])

    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_load("delivered"))
