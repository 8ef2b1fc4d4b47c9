"""SIGKILL a worker process at saga step boundaries; a new worker finishes every order.

Each case parks the activities at a fault point (before the step's side
effect, or after it but before the activity reports back), kills the worker
process there, starts a fresh one and checks: the end state the order would
have reached without the crash, exactly one capture, and a clean audit. The
fast subset kills at the points that guard money and stock (FAST_POINTS);
every point runs with --run-slow and in ``python -m tests.faults.fault_matrix``.
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.stack import FaultStack

# The fast subset (every `make test`, so CI): the points that guard money and
# stock, where a lost "after" could charge twice, keep money on a cancelled
# order, hold stock for good or leave a charged order unconfirmed:
# - charge_payment:after: the capture is made, its result lost;
# - set_order_status:confirmed:after: the pivot is written, its result lost;
# - reserve_stock:after: the stock is held, its result lost;
# - refund_payment:after: the money is returned, its result lost;
# - send_notification:after: a message is sent, its result lost.
# They share the session's fault stack; each costs about 10-16 s (a kill waits
# out the sticky-queue timeout); docs/RELIABILITY.md has the measured figures.
# The other points (the "before"s and release_stock) run with --run-slow.
FAST_POINTS = [
    "charge_payment:after",
    "set_order_status:confirmed:after",
    "reserve_stock:after",
    "refund_payment:after",
    "send_notification:after",
]
SLOW_POINTS = [p for p in scenarios.ALL_POINTS if p not in FAST_POINTS]


@pytest.mark.parametrize("point", FAST_POINTS)
async def test_a_killed_worker_loses_no_order(faults: FaultStack, point: str) -> None:
    crashes = faults.counters.crashes

    violations = await scenarios.kill_worker_at(faults, point)

    assert violations == []
    assert faults.counters.crashes == crashes + 1


@pytest.mark.slow
@pytest.mark.parametrize("point", SLOW_POINTS)
async def test_a_killed_worker_loses_no_order_at_every_other_point(
    faults: FaultStack, point: str
) -> None:
    assert await scenarios.kill_worker_at(faults, point, orders=3) == []


async def test_orders_of_the_old_workflow_version_finish_on_the_new_one(
    faults: FaultStack,
) -> None:
    """Old-version workers (that commit's real source) are killed mid-compensation."""
    violations = await scenarios.upgrade_workflow(faults)

    assert violations == []
