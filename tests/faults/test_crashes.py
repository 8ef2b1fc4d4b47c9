"""SIGKILL a worker process at saga step boundaries; a new worker finishes every order.

Each case parks the activities at a fault point (before the step's side
effect, or after it but before the activity reports back), kills the worker
process there, starts a fresh one and checks: the end state the order would
have reached without the crash, exactly one capture, and a clean audit. The
fast subset kills at two points; every point runs with --run-slow and in
``python -m tests.fault_matrix``.
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.stack import FaultStack

# The fast subset: the charge's "after" (the one that could charge twice) and a
# message. The compensation path is killed in the version test below. Each
# kill costs the sticky-queue timeout (10 s), so the other points are slow.
FAST_POINTS = ["charge_payment:after", "send_notification:after"]
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
