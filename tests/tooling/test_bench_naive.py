"""The bench's ceiling (d): the product's saga with every step a regular activity."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.saga_fakes import FakeActivities, checkout_input, start_order
from tooling.bench.naive import NaiveOrderWorkflow
from workflows.checkout import OrderWorkflow

LOCAL_MARKER = "core_local_activity"


async def _steps_up_to_the_pivot(
    client: Client, task_queue: str, workflow: type[OrderWorkflow]
) -> tuple[list[str], int]:
    """Regular activities scheduled, and local ones run, until the order is confirmed."""
    fakes = FakeActivities()
    async with Worker(client, task_queue=task_queue, workflows=[workflow], activities=fakes.all()):
        handle = await start_order(client, task_queue, checkout_input())
        # Bounded: a saga whose workflow task keeps failing never gets there.
        async with asyncio.timeout(60):
            await fakes.called("send_notification:order_confirmed").wait()
        history = await handle.fetch_history()
        await handle.terminate()
    regular = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == LOCAL_MARKER
    )
    return regular, local


async def test_the_naive_saga_runs_every_step_as_a_regular_activity(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    regular, local = await _steps_up_to_the_pivot(
        time_skipping_env.client, task_queue, NaiveOrderWorkflow
    )
    assert local == 0
    assert regular[:4] == ["record_order", "reserve_stock", "charge_payment", "set_order_status"]


async def test_the_product_saga_runs_its_database_steps_locally(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    # The control: what the naive ceiling undoes is really there.
    regular, local = await _steps_up_to_the_pivot(
        time_skipping_env.client, task_queue + "-product", OrderWorkflow
    )
    assert local == 3  # record_order, reserve_stock, the confirmation
    assert "record_order" not in regular
    assert "charge_payment" in regular
