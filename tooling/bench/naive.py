"""Ceiling (d): the same saga built naively, every step a regular activity.

The bench runs it on a second Temporal dev server with default settings, so
the ratio saga/(d) shows what the saga's tuning gains. It is the product's
``OrderWorkflow`` (same steps, compensations and updates, same workflow type
name, so the API starts it unchanged) with the one thing the tuning changed
undone: each step up to the pivot is a regular activity, one server round
trip apiece, as it was before ``LOCAL_FORWARD_STEPS``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from temporalio import workflow

from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, CheckoutResult
from workflows.retry_policies import ActivityOptions
from workflows.saga_steps import Step
from workflows.steps import run_forward


@workflow.defn(name="OrderWorkflow")
class NaiveOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        return await super().run(input)

    def _forward_step(
        self, step: Step, arg: object, options: ActivityOptions
    ) -> Coroutine[Any, Any, None]:
        return run_forward(step, arg, options, local=False)
