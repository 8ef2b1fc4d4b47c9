"""A compensation refused the same way every time is counted as ``refused``.

That series (``ordersaga_compensations_total{outcome="refused"}``) is what
operators alert on: unlike ``failed``, no retry will fix it (see
docs/OBSERVABILITY.md).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.errors import INVALID_ORDER
from activities.payments import RefundInput, RefundResult
from worker.metrics import REGISTRY, MetricsInterceptor


@activity.defn(name="refund_payment")
async def refused_refund(input: RefundInput) -> RefundResult:
    raise ApplicationError("refund refused", type=INVALID_ORDER, non_retryable=True)


@workflow.defn(sandboxed=False)
class RefundOnce:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            "refund_payment",
            RefundInput("order"),
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


def _count(outcome: str) -> float:
    labels = {"step": "refund_payment", "outcome": outcome}
    return REGISTRY.get_sample_value("ordersaga_compensations_total", labels) or 0.0


async def test_a_refused_compensation_is_counted_as_refused(
    client: Client, task_queue: str
) -> None:
    refused, failed = _count("refused"), _count("failed")
    async with Worker(
        client,
        task_queue=f"{task_queue}-metrics",
        workflows=[RefundOnce],
        activities=[refused_refund],
        interceptors=[MetricsInterceptor()],
    ):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                RefundOnce.run, id=f"refund-{task_queue}", task_queue=f"{task_queue}-metrics"
            )

    assert _count("refused") - refused == 1
    assert _count("failed") == failed
