"""Billable actions and history events per order, counted on the committed replay histories.

The histories in tests/workflows/histories/ were recorded from the real saga,
so their counts are known event by event (see each test's comment).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from tooling.bench.actions import HistoryCost, history_cost, mean_cost

HISTORIES = Path(__file__).parents[1] / "workflows" / "histories"


def _history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())


def test_a_delivered_order_is_counted_as_cloud_bills_it() -> None:
    history = _history("delivered")
    cost = history_cost(history.events)
    assert cost.events == len(history.events)
    # 1 start; charge, 3 mails, ship and the delivered status as activities;
    # OrderStatus upserted 3 times (the 3 patch markers' TemporalChangeVersion
    # upserts are exempt); ship and deliver updates; local activities in 2
    # workflow tasks (record + reserve, then confirm).
    assert cost.actions_by_kind == {
        "workflow started": 1,
        "activity attempts": 6,
        "search-attribute upserts": 3,
        "updates": 2,
        "local activity batches": 2,
    }
    assert cost.actions == 14


def test_an_activity_retried_is_billed_per_attempt() -> None:
    # A compensation that failed four times before its fifth attempt went through.
    history = _history("needs_attention")
    attempts = sum(
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    )
    started = sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    )
    assert attempts >= started + 4
    assert history_cost(history.events).actions_by_kind["activity attempts"] == attempts


def test_a_timer_is_an_action() -> None:
    # A cancel before the pivot waits two provider timeouts, then refunds again.
    cost = history_cost(_history("cancelled_before_pivot").events)
    assert cost.actions_by_kind["timers"] == 1
    assert cost.actions_by_kind["updates"] == 1


def test_the_mean_of_several_orders_and_of_none() -> None:
    one = HistoryCost(10, 4, {"activity attempts": 2, "workflow started": 1, "timers": 1})
    two = HistoryCost(20, 6, {"activity attempts": 5, "workflow started": 1})
    mean = mean_cost([one, two])
    assert mean is not None
    assert (mean.events, mean.actions) == (15, 5)
    assert mean.actions_by_kind == {
        "activity attempts": 3.5,
        "timers": 0.5,
        "workflow started": 1,
    }
    assert mean_cost([]) is None


@pytest.mark.parametrize("name", ["delivered", "rejected", "payment_failed"])
def test_patch_markers_cost_nothing(name: str) -> None:
    history = _history(name)
    upserts = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    patch_only = [
        e
        for e in upserts
        if set(
            e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        == {"TemporalChangeVersion"}
    ]
    assert patch_only, "the saga's histories carry patch markers"
    billed = history_cost(history.events).actions_by_kind.get("search-attribute upserts", 0)
    assert billed == len(upserts) - len(patch_only)
