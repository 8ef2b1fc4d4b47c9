"""Record the replay corpus: one workflow history per end state of the saga.

Re-record after an intended change to ``OrderWorkflow`` (and only then: a
history that no longer replays is exactly what the replay test exists to
catch, so first ask whether running workflows could break)::

    make record-histories          # or: .venv/bin/python -m tests.workflows.record_histories

It runs each scenario against the time-skipping test server with the fake
activities of ``tests/support/saga_fakes.py`` and writes ``tests/workflows/histories/<end>.json``.

Workflows started on an earlier version must still replay on the new code.
So before re-recording after a ``workflow.patched`` change, keep the current
corpus as that earlier version::

    .venv/bin/python -m tests.workflows.record_histories --keep-as v3

moves ``tests/workflows/histories/*.json`` to ``tests/workflows/histories/v3/`` (replayed by
``tests/workflows/test_replay.py`` like the current ones), then records anew. The
corpus kept so far: ``v1/``, recorded before any patch (compensation in
reverse, the attention flag never cleared), ``v2/`` (the flag cleared on
recovery, every step a regular activity) and ``v3/`` (the steps up to the
pivot local, the charge among them; ship in two activities); the current one
also has the ``cancellable-charge``, ``atomic-ship`` and
``report-stuck-compensation`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import errors
from tests.support.saga_fakes import (
    Behaviour,
    FakeActivities,
    checkout_input,
    fail_calls,
    refuse,
    start_order,
)
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, CheckoutInput, CheckoutResult, ShipRequest

HISTORIES = Path(__file__).parent / "histories"

Handle = WorkflowHandle[OrderWorkflow, CheckoutResult]
Scenario = Callable[[Client, str, FakeActivities], Awaitable[Handle]]


def _input(name: str) -> CheckoutInput:
    """Fixed ids per scenario, so a re-recording changes only what changed."""
    return checkout_input(
        order_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ordersaga-history:{name}")),
        customer_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "ordersaga-history:customer")),
    )


async def delivered(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    handle = await start_order(client, task_queue, _input("delivered"))
    await fakes.called("send_notification:order_confirmed").wait()
    await handle.execute_update(OrderWorkflow.ship, ShipRequest("DHL", "JD0001"))
    await handle.execute_update(OrderWorkflow.deliver)
    return handle


async def rejected(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    fakes.on("reserve_stock", refuse(errors.OUT_OF_STOCK, "not enough stock for SKU-1"))
    return await start_order(client, task_queue, _input("rejected"))


async def payment_failed(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    fakes.on("charge_payment", refuse(errors.PAYMENT_DECLINED, "card declined"))
    input = _input("payment_failed")
    return await start_order(client, task_queue, input)


async def cancelled_before_pivot(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    # The provider is down: the cancel stops the charge while it is retried
    # (the activity cancel request), the order is undone, and, the charge
    # having ended without an answer, the refund is checked once more.
    failed = asyncio.Event()

    async def provider_down(attempt: int) -> None:
        failed.set()
        raise ApplicationError("provider down", type=errors.PROVIDER_UNAVAILABLE)

    fakes.on("charge_payment", provider_down)
    input = _input("cancelled_before_pivot")
    handle = await start_order(client, task_queue, input)
    await failed.wait()
    update = await handle.start_update(
        OrderWorkflow.cancel,
        CancelRequest("changed my mind", "customer"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    await update.result()
    return handle


async def cancelled_after_confirm(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    input = _input("cancelled_after_confirm")
    handle = await start_order(client, task_queue, input)
    await fakes.called("send_notification:order_confirmed").wait()
    await handle.execute_update(OrderWorkflow.cancel, CancelRequest("too slow", "admin"))
    return handle


def _stuck_then_fixed() -> Behaviour:
    """Five transient failures (the order is flagged), one refusal (stuck), then through."""
    transient = fail_calls(5)
    calls = 0

    async def behaviour(attempt: int) -> None:
        nonlocal calls
        calls += 1
        await transient(attempt)
        if calls == 6:
            raise ApplicationError("reservation locked", type="Locked", non_retryable=True)

    return behaviour


async def needs_attention(client: Client, task_queue: str, fakes: FakeActivities) -> Handle:
    fakes.on("charge_payment", refuse(errors.PAYMENT_DECLINED, "card declined"))
    # Flagged after the quick tries, refused once in the slow ones (the
    # compensation.stuck line), then recovered (the flag cleared).
    fakes.on("release_stock", _stuck_then_fixed())
    input = _input("needs_attention")
    return await start_order(client, task_queue, input)


# The file name of each history is its end state.
SCENARIOS: dict[str, Scenario] = {
    "delivered": delivered,
    "rejected": rejected,
    "payment_failed": payment_failed,
    "cancelled_before_pivot": cancelled_before_pivot,
    "cancelled_after_confirm": cancelled_after_confirm,
    "needs_attention": needs_attention,
}


async def record(env: WorkflowEnvironment, name: str, scenario: Scenario) -> Path:
    fakes = FakeActivities()
    task_queue = f"record-{name}-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[OrderWorkflow], activities=fakes.all()
    ):
        handle = await scenario(env.client, task_queue, fakes)
        await handle.result()
        history = await handle.fetch_history()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    return path


def _test_server() -> str:
    found = shutil.which("temporal-test-server") or str(
        Path(sys.executable).parent / "temporal-test-server"
    )
    if not os.path.exists(found):
        raise SystemExit("temporal-test-server is not installed: run `make install` first")
    return found


def keep_as(version: str) -> Path:
    """Move the current corpus into ``HISTORIES/<version>/``: an older version's histories."""
    target = HISTORIES / version
    if target.exists():
        raise SystemExit(f"{target} exists already: pick another version name")
    target.mkdir()
    for path in sorted(HISTORIES.glob("*.json")):
        path.rename(target / path.name)
    return target


async def main() -> None:
    # The scenarios fail activities on purpose; their tracebacks are noise here.
    logging.getLogger("temporalio.activity").setLevel(logging.CRITICAL)
    logging.getLogger("temporalio.workflow").setLevel(logging.CRITICAL)
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_test_server())
    try:
        for name, scenario in SCENARIOS.items():
            path = await record(env, name, scenario)
            print(f"recorded {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.workflows.record_histories")
    parser.add_argument(
        "--keep-as",
        metavar="VERSION",
        help="first move the current histories to tests/workflows/histories/VERSION/ "
        "(before re-recording after a workflow.patched change)",
    )
    args = parser.parse_args()
    if args.keep_as:
        print(f"kept the previous version in {keep_as(args.keep_as)}")
    asyncio.run(main())
    # The SDK's Rust runtime thread can abort interpreter finalisation
    # ("PyGILState_Release", see shared NOTES) after all work is done and the
    # server is shut down; leave without finalising so the exit code is honest.
    sys.stdout.flush()
    os._exit(0)
