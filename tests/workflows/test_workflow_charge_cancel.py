"""A cancel sent while the charge hangs is taken at once, and voids the charge.

The charge (a provider that never answers, like the simulator's
``tok_timeout``) is a fake blocked on an event. Before CANCELLABLE_CHARGE it
was a local activity whose attempt held the workflow task, and the saga then
waited for all its retries: the order ended ``payment_failed`` and the
cancel's reason was lost.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.saga_fakes import FakeActivities, checkout_input, start_order, wait_for
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, CheckoutResult

pytestmark = pytest.mark.timeout(120)


async def test_a_cancel_during_a_hanging_charge_cancels_the_order_and_voids_the_charge(
    temporal_dev_server: WorkflowEnvironment, task_queue: str, fakes: FakeActivities
) -> None:
    # On the real dev server: the time-skipping server mishandles an activity
    # cancelled with WAIT_CANCELLATION_COMPLETED (see test_workflow_cancel).
    client = temporal_dev_server.client
    never, started = asyncio.Event(), asyncio.Event()
    fakes.on("charge_payment", wait_for(never, started))  # the provider never answers
    async with Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=fakes.all()
    ):
        handle = await start_order(
            client,
            task_queue,
            checkout_input(provider_timeout_seconds=3.0, payment_deadline_seconds=60.0),
        )
        try:
            await _cancel_while_hanging(handle, never, started)
            settled_calls = list(fakes.calls)
        finally:
            never.set()  # let the abandoned fake attempt end, so the worker can stop
        state = await handle.query(OrderWorkflow.state)
        result = await handle.result()
    assert state.status == "cancelled"
    assert (result.status, result.failure_reason) == ("cancelled", "took too long")
    # No second attempt after the cancel, the charge never completed, and the
    # compensations ran in reverse: void (refund) the payment, then release.
    assert fakes.attempts["charge_payment"] == 1
    assert settled_calls[:5] == [
        "record_order",
        "reserve_stock",
        "refund_payment",
        "release_stock",
        "set_order_status:cancelled",
    ]
    # The charge ended without an answer, so once two provider timeouts have
    # passed the refund runs again, for a capture that might still land.
    assert fakes.calls.count("refund_payment") == 2
    assert "compensation.rechecked:refund_payment" in fakes.events


async def _cancel_while_hanging(
    handle: WorkflowHandle[OrderWorkflow, CheckoutResult],
    never: asyncio.Event,
    started: asyncio.Event,
) -> None:
    await started.wait()
    update = await handle.start_update(
        OrderWorkflow.cancel,
        CancelRequest(reason="took too long", requested_by="user-1"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    # Accepted while the charge attempt still hangs; it settles without it.
    assert not never.is_set()
    assert (await handle.query(OrderWorkflow.state)).cancel_requested
    assert (await update.result()).status == "cancelled"
