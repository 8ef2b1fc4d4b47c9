"""The saga's failure branches on the time-skipping server.

Each test scripts the fake activities, runs one order to its end and checks
the end state, the exact sequence of activity calls (so a missing or extra
compensation fails the test) and the search attributes the server holds.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from activities import errors
from tests.support.saga_fakes import (
    FakeActivities,
    always_fail,
    checkout_input,
    fail_calls,
    fail_times,
    refuse,
    start_order,
)
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, ShipRequest

pytestmark = pytest.mark.timeout(120)

ACCEPTED = WorkflowUpdateStage.ACCEPTED


async def test_out_of_stock_rejects_without_charging(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("reserve_stock", refuse(errors.OUT_OF_STOCK, "not enough stock for SKU-1"))
    handle = await start_order(client, task_queue, checkout_input())

    result = await handle.result()

    assert (result.status, result.failure_reason) == ("rejected", "not enough stock for SKU-1")
    assert fakes.calls == [
        "record_order",
        # Registered before the reserve ran; releasing nothing is a no-op.
        "release_stock",
        "set_order_status:rejected",
        "send_notification:order_rejected",
    ]
    assert fakes.attempts["reserve_stock"] == 1  # a refusal is not retried
    assert "charge_payment" not in fakes.attempts
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "rejected"


async def test_product_gone_rejects(client: Client, task_queue: str, fakes: FakeActivities) -> None:
    fakes.on("reserve_stock", refuse(errors.PRODUCT_UNAVAILABLE, "product SKU-2 is gone"))
    result = await (await start_order(client, task_queue, checkout_input())).result()
    assert result.status == "rejected"
    assert "charge_payment" not in fakes.attempts


async def test_declined_card_fails_payment_and_releases_stock(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("charge_payment", refuse(errors.PAYMENT_DECLINED, "card declined"))
    handle = await start_order(client, task_queue, checkout_input())

    result = await handle.result()

    assert (result.status, result.failure_reason) == ("payment_failed", "card declined")
    assert fakes.calls == [
        "record_order",
        "reserve_stock",
        # Strictly in reverse: refund first (it voids anything a lost attempt
        # may have captured), then release.
        "refund_payment",
        "release_stock",
        "set_order_status:payment_failed",
        "send_notification:payment_failed",
    ]
    assert fakes.attempts["charge_payment"] == 1
    assert fakes.events == [
        "compensation.started:refund_payment",
        "compensation.finished:refund_payment",
        "compensation.started:release_stock",
        "compensation.finished:release_stock",
    ]
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.ORDER_STATUS) == "payment_failed"


async def test_flaky_provider_succeeds_on_retry(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("charge_payment", fail_times(2, errors.PROVIDER_UNAVAILABLE))
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()

    assert (await handle.query(OrderWorkflow.state)).status == "confirmed"
    assert fakes.attempts["charge_payment"] == 3
    assert "refund_payment" not in fakes.attempts
    await handle.execute_update(OrderWorkflow.ship, ShipRequest())
    await handle.execute_update(OrderWorkflow.deliver)
    assert (await handle.result()).status == "delivered"


async def test_provider_failing_past_the_deadline_fails_payment(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("charge_payment", always_fail(errors.PROVIDER_UNAVAILABLE))
    handle = await start_order(
        client, task_queue, checkout_input(payment_deadline_seconds=20, provider_timeout_seconds=2)
    )

    result = await handle.result()

    assert result.status == "payment_failed"
    assert fakes.attempts["charge_payment"] > 1  # transient: it was retried
    _assert_undone_then_rechecked(fakes)


async def test_provider_never_answering_fails_payment_at_the_deadline(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    async def hang(attempt: int) -> None:
        await asyncio.sleep(3600)

    fakes.on("charge_payment", hang)
    handle = await start_order(
        client, task_queue, checkout_input(payment_deadline_seconds=6, provider_timeout_seconds=1)
    )

    result = await handle.result()

    assert result.status == "payment_failed"
    assert result.failure_reason == "the payment did not complete within the payment deadline"
    assert "charge_payment" not in fakes.calls  # no attempt ever completed
    _assert_undone_then_rechecked(fakes)


def _assert_undone_then_rechecked(fakes: FakeActivities) -> None:
    # Undone in reverse and settled; then, as the charge ended without an
    # answer, the refund runs once more for a capture still on its way.
    steps = [c for c in fakes.calls if not c.startswith("send_notification")]
    assert steps[-4:] == [
        "refund_payment",
        "release_stock",
        "set_order_status:payment_failed",
        "refund_payment",
    ]
    assert "send_notification:payment_failed" in fakes.calls
    assert "compensation.rechecked:refund_payment" in fakes.events


async def test_compensation_failing_flags_the_order_then_completes(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("charge_payment", refuse(errors.PAYMENT_DECLINED, "card declined"))
    # Five quick attempts fail, so the order is flagged; the slow retries
    # then fail twice more before the release goes through.
    fakes.on("release_stock", fail_calls(7))
    handle = await start_order(client, task_queue, checkout_input())

    result = await handle.result()

    assert result.status == "payment_failed"
    assert fakes.attempts["release_stock"] == 8
    assert fakes.calls == [
        "record_order",
        "reserve_stock",
        "refund_payment",
        "flag_order_for_attention:release_stock",
        "release_stock",
        "clear_order_attention:release_stock",
        "set_order_status:payment_failed",
        "send_notification:payment_failed",
    ]
    assert "compensation.recovered:release_stock" in fakes.events


async def test_compensation_that_recovers_clears_the_attention_flag(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("charge_payment", refuse(errors.PAYMENT_DECLINED, "card declined"))
    # The release fails in a way no retry fixes (so the order is flagged at
    # once, and the workflow waits out its pause on a timer) until the test
    # lets it through.
    release_open = asyncio.Event()

    async def release(attempt: int) -> None:
        if not release_open.is_set():
            raise ApplicationError("reservation locked", type="Locked", non_retryable=True)

    fakes.on("release_stock", release)
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("flag_order_for_attention:release_stock").wait()

    # Flagged while the release keeps failing: the query and the search
    # attribute both show it.
    assert (await handle.query(OrderWorkflow.state)).needs_attention is True
    flagged = await handle.describe()
    assert flagged.typed_search_attributes.get(search_attributes.NEEDS_ATTENTION) is True
    assert "clear_order_attention:release_stock" not in fakes.calls

    release_open.set()
    result = await handle.result()

    assert result.status == "payment_failed"
    assert fakes.calls.count("clear_order_attention:release_stock") == 1
    # Cleared only after the release went through, before the order settled.
    recovered = fakes.calls.index("release_stock")
    assert fakes.calls.index("clear_order_attention:release_stock") == recovered + 1
    assert fakes.calls[recovered + 2 :] == [
        "set_order_status:payment_failed",
        "send_notification:payment_failed",
    ]
    assert "compensation.recovered:release_stock" in fakes.events
    assert (await handle.query(OrderWorkflow.state)).needs_attention is False
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.NEEDS_ATTENTION) is False


async def test_failing_notification_is_retried_and_never_refunds(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    fakes.on("send_notification", fail_times(2))
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()

    assert (await handle.query(OrderWorkflow.state)).status == "confirmed"
    await handle.execute_update(OrderWorkflow.ship, ShipRequest())
    await handle.execute_update(OrderWorkflow.deliver)
    result = await handle.result()

    assert result.status == "delivered"
    # Each of the three messages failed twice before it went out.
    assert fakes.attempts["send_notification"] == 3 * 3
    assert [c for c in fakes.calls if c.startswith("send_notification")] == [
        "send_notification:order_confirmed",
        "send_notification:order_shipped",
        "send_notification:order_delivered",
    ]
    for undo in ("refund_payment", "release_stock"):
        assert undo not in fakes.attempts


async def test_a_compensation_refused_every_time_reports_its_cause_and_keeps_trying(
    client: Client, task_queue: str, fakes: FakeActivities
) -> None:
    # A refusal no retry fixes (here the provider refusing the refund) fails
    # the same way on every try. The order is flagged, the cause goes on the
    # timeline as compensation.stuck (REPORT_STUCK_COMPENSATION), and the
    # refund is tried again after each pause rather than given up: giving up
    # would keep the customer's money. Here a fix lands after three tries.
    calls = 0

    async def refund(attempt: int) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ApplicationError("refund refused", type=errors.INVALID_ORDER, non_retryable=True)

    fakes.on("refund_payment", refund)
    handle = await start_order(client, task_queue, checkout_input())
    await fakes.called("send_notification:order_confirmed").wait()
    await handle.start_update(
        OrderWorkflow.cancel, CancelRequest(reason="changed my mind"), wait_for_stage=ACCEPTED
    )

    result = await handle.result()

    assert result.status == "cancelled"
    assert fakes.attempts["refund_payment"] == 4
    stuck = [e for e in fakes.events if e.startswith("compensation.stuck:refund_payment:")]
    assert len(stuck) == 2  # one per failed slow try, one timeline line per cause
    assert f"compensation.stuck:refund_payment: {errors.INVALID_ORDER}" in stuck[0]
    assert "flag_order_for_attention:refund_payment" in fakes.calls
    assert "clear_order_attention:refund_payment" in fakes.calls
