"""Cancelling an order at every point of the saga, and the updates' guards.

A cancel before the pivot lets the step in flight finish, then compensates;
after confirmation it refunds and releases through the same path; after
shipping the validator refuses it at once.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, CancelledError, WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.saga_fakes import (
    FakeActivities,
    checkout_input,
    fail_times,
    refuse,
    start_order,
    wait_for,
)
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, ShipRequest, workflow_id
from workflows.order_updates import INVALID_TRANSITION

pytestmark = pytest.mark.timeout(120)

# Strictly in reverse (the product contract): refund, then release.
_UNDO = ["refund_payment", "release_stock", "set_order_status:cancelled"]
_UNDO_AND_SETTLE = [*_UNDO, "send_notification:order_cancelled"]
_NOTICES = ("send_notification:order_confirmed", "send_notification:order_cancelled")


async def _cancel_during(
    step: str, client: Client, task_queue: str, fakes: FakeActivities
) -> tuple[str, str | None]:
    """Cancel while ``step`` is running; returns (cancel update's status, result status)."""
    gate, started = asyncio.Event(), asyncio.Event()
    fakes.on(step, wait_for(gate, started))
    handle = await start_order(client, task_queue, checkout_input())
    await started.wait()

    update = await handle.start_update(
        OrderWorkflow.cancel,
        CancelRequest(reason="changed my mind", requested_by="user-1"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    gate.set()  # the step in flight finishes first, then the saga compensates
    state = await update.result()
    result = await handle.result()
    assert result.failure_reason == "changed my mind"
    return state.status, result.status


async def test_cancel_during_reserve_releases_without_charging(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    assert await _cancel_during("reserve_stock", client, task_queue, fakes) == (
        "cancelled",
        "cancelled",
    )
    assert fakes.calls == [
        "record_order",
        "reserve_stock",
        "release_stock",
        "set_order_status:cancelled",
        "send_notification:order_cancelled",
    ]
    assert "charge_payment" not in fakes.attempts


async def test_cancel_during_charge_refunds_and_releases(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    assert await _cancel_during("charge_payment", client, task_queue, fakes) == (
        "cancelled",
        "cancelled",
    )
    assert fakes.calls == ["record_order", "reserve_stock", "charge_payment", *_UNDO_AND_SETTLE]
    assert "set_order_status:confirmed" not in fakes.calls  # never reached the pivot


async def test_a_cancel_gets_in_while_the_charge_waits_to_retry(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    # The charge is a regular activity (CANCELLABLE_CHARGE): its retries
    # never hold the workflow task, so a cancel is taken before the pivot,
    # and it stops the charge instead of waiting for its retries to end.
    #
    # The charge fails until the cancel has been accepted, so however slow
    # the machine and whenever the retry timer fires, no attempt can succeed
    # (and reach the pivot) before the cancel is in: no race with the timer.
    retrying, accepted = asyncio.Event(), asyncio.Event()

    async def fail_until_cancel_accepted(attempt: int) -> None:
        if attempt >= 2:
            retrying.set()  # past the first retry
        if not accepted.is_set():
            raise ApplicationError(f"attempt {attempt} failed", type="Transient")

    fakes.on("charge_payment", fail_until_cancel_accepted)
    handle = await start_order(client, task_queue, checkout_input())
    await asyncio.wait_for(retrying.wait(), timeout=60)

    update = await handle.start_update(
        OrderWorkflow.cancel,
        CancelRequest(reason="changed my mind"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    accepted.set()  # the next attempt succeeds: the step in flight finishes
    result = await handle.result()
    assert (await update.result()).status == "cancelled"
    assert result.status == "cancelled"
    assert "set_order_status:confirmed" not in fakes.calls  # never reached the pivot
    # The charge was stopped between attempts (or, had its next attempt
    # already started, that one finished first): either way it is undone.
    # Then, the charge having ended without an answer, the refund runs once
    # more for a capture still on its way.
    steps = [c for c in fakes.calls if c not in ("charge_payment", *_NOTICES)]
    assert steps == ["record_order", "reserve_stock", *_UNDO, "refund_payment"]
    assert "send_notification:order_cancelled" in fakes.calls


async def test_cancel_after_confirmation_refunds_and_releases(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()

    state = await handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="too slow"))

    assert state.status == "cancelled"
    result = await handle.result()
    assert (result.status, result.failure_reason) == ("cancelled", "too slow")
    assert fakes.calls == [
        "record_order",
        "reserve_stock",
        "charge_payment",
        "set_order_status:confirmed",
        "send_notification:order_confirmed",
        *_UNDO_AND_SETTLE,
    ]
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "cancelled"


async def test_cancel_after_shipping_is_refused_at_once(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()
    await handle.execute_update(OrderWorkflow.ship, ShipRequest("UPS", "1Z"))

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(OrderWorkflow.cancel, CancelRequest())

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == INVALID_TRANSITION
    assert (await handle.query(OrderWorkflow.state)).status == "shipped"
    await handle.execute_update(OrderWorkflow.deliver)
    assert (await handle.result()).status == "delivered"
    assert "refund_payment" not in fakes.attempts
    assert "release_stock" not in fakes.attempts


async def test_ship_and_deliver_are_refused_from_the_wrong_state(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    gate = asyncio.Event()
    fakes.on("charge_payment", wait_for(gate))
    handle = await start_order(client, task_queue, checkout_input())

    for update in (OrderWorkflow.ship, OrderWorkflow.deliver):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            if update is OrderWorkflow.ship:
                await handle.execute_update(OrderWorkflow.ship, ShipRequest())
            else:
                await handle.execute_update(OrderWorkflow.deliver)
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == INVALID_TRANSITION

    gate.set()
    await fakes.called("send_notification:order_confirmed").wait()
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(OrderWorkflow.deliver)  # confirmed, not shipped
    await handle.execute_update(OrderWorkflow.cancel, CancelRequest())
    assert (await handle.result()).status == "cancelled"
    assert "ship_order" not in fakes.attempts


async def test_two_racing_ships_ship_once(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    fakes.on("ship_order", wait_for(gate, started))
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()

    first = await handle.start_update(
        OrderWorkflow.ship, ShipRequest(), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await started.wait()
    # While the first ship is in progress, a second ship and a cancel are refused.
    for second in (
        handle.execute_update(OrderWorkflow.ship, ShipRequest()),
        handle.execute_update(OrderWorkflow.cancel, CancelRequest()),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await second
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == INVALID_TRANSITION
    gate.set()

    assert (await first.result()).status == "shipped"
    assert fakes.attempts["ship_order"] == 1
    await handle.execute_update(OrderWorkflow.deliver)
    assert (await handle.result()).status == "delivered"


async def test_a_repeated_start_is_refused_or_joins_the_same_run(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    gate = asyncio.Event()
    fakes.on("reserve_stock", wait_for(gate))
    input = checkout_input()
    handle = await start_order(client, task_queue, input)

    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            OrderWorkflow.run, input, id=workflow_id(input.order_id), task_queue=task_queue
        )
    again = await client.start_workflow(
        OrderWorkflow.run,
        input,
        id=workflow_id(input.order_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    assert again.result_run_id == handle.result_run_id

    gate.set()
    await fakes.called("send_notification:order_confirmed").wait()
    await handle.execute_update(OrderWorkflow.cancel, CancelRequest())
    await handle.result()
    assert fakes.attempts["record_order"] == 1
    assert fakes.attempts["charge_payment"] == 1


async def test_workflow_cancellation_lets_the_charge_finish_then_undoes_the_order(
    temporal_dev_server: WorkflowEnvironment, task_queue: str, fakes: FakeActivities
) -> None:
    # On the real dev server: the time-skipping server mishandles an activity
    # cancelled with WAIT_CANCELLATION_COMPLETED ("ACTIVITY_UNKNOWN").
    client = temporal_dev_server.client
    gate, started = asyncio.Event(), asyncio.Event()
    fakes.on("charge_payment", wait_for(gate, started))
    async with Worker(
        client, task_queue=task_queue, workflows=[OrderWorkflow], activities=fakes.all()
    ):
        handle = await start_order(client, task_queue, checkout_input())
        await started.wait()

        await handle.cancel()  # an operator cancelling the workflow itself
        gate.set()

        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    # The charge in flight was allowed to finish, then undone before the
    # pivot: the charge runs outside the workflow task (CANCELLABLE_CHARGE),
    # so the cancellation reaches the workflow while it runs.
    assert fakes.calls == ["record_order", "reserve_stock", "charge_payment", *_UNDO_AND_SETTLE]
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "cancelled"


async def test_a_failing_ship_is_retried_until_done_never_left_half_way(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    # Before ATOMIC_SHIP, record_shipment marked the order shipped and a
    # commit_stock that then failed for good failed the update: the database
    # said shipped, the saga confirmed, and ship, cancel and deliver were all
    # refused from then on. Now one activity does all of it, retried.
    fakes.on("commit_stock", refuse("InvalidOrder"))
    fakes.on("ship_order", fail_times(3))
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()

    shipped = await handle.execute_update(OrderWorkflow.ship, ShipRequest("DHL", "JD0001"))

    assert shipped.status == "shipped"
    assert fakes.attempts["ship_order"] == 4
    assert "record_shipment" not in fakes.attempts
    await handle.execute_update(OrderWorkflow.deliver)
    assert (await handle.result()).status == "delivered"
