"""Ceiling (d): the same saga built naively, every step a regular activity.

The bench runs it on a second Temporal dev server with default settings, so
the ratio saga/(d) shows what the saga's tuning gains. It is the product's
``OrderWorkflow`` (same steps, compensations and updates, same workflow type
name, so the API starts it unchanged) with the one thing the tuning changed
undone: each step up to the pivot is a regular activity, one server round
trip apiece, as it was before ``LOCAL_FORWARD_STEPS``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, CheckoutResult


@workflow.defn(name="OrderWorkflow")
class NaiveOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        return await super().run(input)

    async def _forward_step(
        self,
        activity: Any,
        arg: Any,
        *,
        start_to_close: timedelta,
        retry_policy: RetryPolicy,
        schedule_to_close: timedelta | None = None,
    ) -> None:
        await workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=start_to_close,
            schedule_to_close_timeout=schedule_to_close,
            retry_policy=retry_policy,
        )
