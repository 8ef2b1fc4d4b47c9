"""Replay the recorded histories against the current ``OrderWorkflow``.

Every committed history must still replay: a change that would make running
workflows diverge from their history (a step added, removed or reordered)
fails here before it reaches a worker. After an intended, compatible change
re-record them with::

    make record-histories          # or: .venv/bin/python -m tests.record_histories
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from workflows.checkout import (
    RELEASE_STOCK_FIRST,
    CheckoutInput,
    CheckoutResult,
    OrderWorkflow,
)

# This module defines a workflow (the altered one below), so the sandbox
# re-imports it; everything that is not workflow code is passed through.
with workflow.unsafe.imports_passed_through():
    from activities.inventory import InventoryActivities, StockInput
    from activities.payments import ChargeInput, PaymentActivities
    from tests.record_histories import HISTORIES, SCENARIOS
    from workflows import retry_policies as policies

# The end state each history must show, by file name.
END_STATES = {
    "delivered": "delivered",
    "rejected": "rejected",
    "payment_failed": "payment_failed",
    "cancelled_before_pivot": "cancelled",
    "cancelled_after_confirm": "cancelled",
    "needs_attention": "payment_failed",
}


# Histories of earlier workflow versions (tests/histories/<version>/), kept
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


def test_the_corpus_holds_both_sides_of_every_version_change() -> None:
    # Each compensating end state of today's corpus carries the patch marker,
    # and the corpus before it has the same end states without it.
    compensating = sorted(set(END_STATES) - {"delivered"})
    before = [name for name in OLDER_VERSIONS if name.startswith("v1-reverse-undo/")]

    assert {name.split("/")[-1] for name in before} == set(END_STATES)
    for name in compensating:
        assert RELEASE_STOCK_FIRST in _patches(_load(name)), name
        assert RELEASE_STOCK_FIRST not in _patches(_load(f"v1-reverse-undo/{name}")), name


async def test_needs_attention_history_flags_the_order() -> None:
    history = _load("needs_attention")
    flagged = [
        event
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
        and "NeedsAttention"
        in event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    ]
    assert len(flagged) == 1


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
