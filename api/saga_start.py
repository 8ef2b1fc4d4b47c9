"""Starting an order's saga: one workflow per order, started at most once.

The order's rows and the workflow start are two steps that cannot share a
transaction, so each is idempotent on its own: the rows are unique per
(customer, Idempotency-Key) (``core/ordering``), and the workflow ID is
derived from the order ID with a conflict policy that makes a repeated start
return the running one. A retry after a crash between the two steps
therefore finds the rows and starts (or finds) the same workflow: never a
second order, saga or charge.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import ProblemError
from core.models import Order, OrderStatus
from core.money import CURRENCY_EXPONENTS, Money
from core.settings import Settings
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, workflow_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _SagaStart:
    """The arguments of the order's workflow start, for a plain start and an update-with-start."""

    input: CheckoutInput
    options: dict[str, Any]


def _saga_start(settings: Settings, order: Order, customer_email: str) -> _SagaStart:
    amount = Money(order.total, order.currency)
    return _SagaStart(
        CheckoutInput(
            order_id=str(order.id),
            customer_id=str(order.customer_id),
            total=order.total,
            currency=order.currency,
            payment_deadline_seconds=settings.payment_deadline_seconds,
            provider_timeout_seconds=settings.payment_provider_timeout_seconds,
        ),
        {
            "id": workflow_id(str(order.id)),
            "task_queue": settings.task_queue,
            # A running saga with this ID is returned as is; a finished one
            # is never run again.
            "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.ORDER_STATUS, OrderStatus.PENDING.value),
                    SearchAttributePair(search_attributes.CUSTOMER_ID, str(order.customer_id)),
                    # Major units as a float, for sorting and reading in the
                    # Web UI only; the saga's money stays integer minor units.
                    SearchAttributePair(
                        search_attributes.ORDER_TOTAL,
                        order.total / 10 ** CURRENCY_EXPONENTS[order.currency],
                    ),
                    SearchAttributePair(search_attributes.NEEDS_ATTENTION, False),
                ]
            ),
            "static_summary": f"Order by {customer_email}: {amount.format()}",
        },
    )


async def start_saga(
    client: Client,
    settings: Settings,
    order: Order,
    customer_email: str,
    *,
    wait_seconds: float = 0,
) -> None:
    """Start the order's workflow (starting it again is harmless).

    With ``wait_seconds``, the start carries the saga's ``outcome`` update
    (update-with-start, one request) and returns once the saga has passed its
    pivot or settled as failed, or when the wait is over, whichever is first.
    The saga announces its outcome only after writing it to the read model,
    so the caller reads the outcome from there either way.
    """
    start = _saga_start(settings, order, customer_email)
    try:
        if wait_seconds > 0:
            operation = WithStartWorkflowOperation(OrderWorkflow.run, start.input, **start.options)
            try:
                # asyncio.timeout, not wait_for: the call runs in this task, so
                # the log context its interceptor sets (the saga's IDs) stays.
                async with asyncio.timeout(wait_seconds):
                    await client.execute_update_with_start_workflow(
                        OrderWorkflow.outcome, start_workflow_operation=operation
                    )
                return
            except (
                TimeoutError,
                WorkflowUpdateFailedError,
                WorkflowUpdateRPCTimeoutOrCancelledError,
            ):
                # The wait is over (or the update went wrong): the answer is
                # "still pending". The start may not have reached the server
                # before the wait ran out, so make sure the saga runs.
                pass
        await client.start_workflow(OrderWorkflow.run, start.input, **start.options)
    except WorkflowAlreadyStartedError:
        # The saga of this order already ran to its end: nothing to start.
        pass
    except RPCError as err:
        log.warning("could not start the saga of order %s: %s", order.id, err.status)
        # The rows are written; a retry with the same key starts the saga.
        raise ProblemError(
            503,
            "the order was recorded but its processing could not be started; "
            "retry with the same Idempotency-Key",
            code="temporal-unavailable",
            headers={"Retry-After": "5"},
        ) from err
