"""Ceilings (a), (b) and (f): Temporal workflows that do what the saga does, minus the work.

(a) ``EmptyWorkflow`` returns at once: the cost of starting a workflow and
waiting for its result, through the same HTTP server, client and worker
process as the saga.

(b) ``NoopSagaWorkflow`` runs the saga's steps, in the saga's order and with
the saga's kinds of activity (local or regular), each doing nothing. Its
throughput is what the saga could reach if its activities were free, so the
ratio saga/(b) shows what the activities' own work costs.

(f) ``LocalNoopWorkflow`` runs four no-op local activities, started by the
bench's own process straight through a Temporal client (no HTTP, no API
process): what Temporal alone costs for a saga of four local steps, the
figure other engines are compared on.

This module is imported by the bench worker (which registers the workflows)
and by the bench server (which starts them). It defines workflows, so it has
no side effects at import and no entry point.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

# Their own queue, so the ceilings never share pollers or slots with the saga.
CEILING_TASK_QUEUE = "bench-ceilings"

# As generous as the saga's database steps (workflows/retry_policies.py); a
# no-op never gets near it.
STEP_TIMEOUT = timedelta(seconds=5)


class StepKind(enum.StrEnum):
    LOCAL = "local"  # runs inside the workflow task's worker: no server round trip
    REGULAR = "regular"  # scheduled through the server's activity task queue


@dataclass(frozen=True)
class SagaStep:
    name: str
    kind: StepKind


# Mirrors workflows/checkout.py (OrderWorkflow._run_steps and its notifier):
# the three short database steps up to the pivot run as local activities, the
# charge (which may wait on the provider; CANCELLABLE_CHARGE) and the
# confirmation mail as regular ones. Change this list, and only this list,
# when the saga's steps change.
SAGA_STEPS: tuple[SagaStep, ...] = (
    SagaStep("record_order", StepKind.LOCAL),
    SagaStep("reserve_stock", StepKind.LOCAL),
    SagaStep("charge_payment", StepKind.REGULAR),
    SagaStep("confirm", StepKind.LOCAL),
    SagaStep("notify", StepKind.REGULAR),
)


@dataclass
class NoopInput:
    # The same shape of payload as the saga's steps: an order id (and the step).
    order_id: str
    step: str


@activity.defn(name="bench_noop")
async def noop(input: NoopInput) -> None:
    """Does nothing: what is measured is the scheduling around it."""


@workflow.defn(name="BenchEmptyWorkflow")
class EmptyWorkflow:
    """Ceiling (a): completes in its first workflow task."""

    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn(name="BenchNoopSagaWorkflow")
class NoopSagaWorkflow:
    """Ceiling (b): the saga's steps (SAGA_STEPS), in order, each a no-op."""

    @workflow.run
    async def run(self, order_id: str) -> None:
        for step in SAGA_STEPS:
            if step.kind is StepKind.LOCAL:
                await workflow.execute_local_activity(
                    noop, NoopInput(order_id, step.name), start_to_close_timeout=STEP_TIMEOUT
                )
            else:
                await workflow.execute_activity(
                    noop, NoopInput(order_id, step.name), start_to_close_timeout=STEP_TIMEOUT
                )


# Ceiling (f): as many steps as the saga has before its mail, all local.
LOCAL_NOOP_STEPS = 4


@workflow.defn(name="BenchLocalNoopWorkflow")
class LocalNoopWorkflow:
    """Ceiling (f): four no-op local activities, in one workflow task when nothing fails."""

    @workflow.run
    async def run(self, order_id: str) -> None:
        for step in range(LOCAL_NOOP_STEPS):
            await workflow.execute_local_activity(
                noop, NoopInput(order_id, f"step-{step}"), start_to_close_timeout=STEP_TIMEOUT
            )


WORKFLOWS = [EmptyWorkflow, NoopSagaWorkflow, LocalNoopWorkflow]
ACTIVITIES = [noop]
