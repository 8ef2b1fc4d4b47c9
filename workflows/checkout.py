"""The checkout saga: one durable workflow per order.

CONTRACT SKELETON: the dataclasses and the workflow's public handlers are the
interface the API codes against. The body is being written.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass
class CheckoutInput:
    """Everything the saga needs that is not read from the database.

    Timeouts travel in the input (not read from settings inside the workflow)
    because workflow code must be deterministic on replay.
    """

    order_id: str
    customer_id: str
    total: int  # minor units
    currency: str
    payment_deadline_seconds: float = 60.0
    provider_timeout_seconds: float = 5.0


@dataclass
class CheckoutResult:
    order_id: str
    status: str  # an OrderStatus value
    failure_reason: str | None = None


@dataclass
class CancelRequest:
    reason: str | None = None
    requested_by: str | None = None  # user id, for the timeline


@dataclass
class ShipRequest:
    carrier: str | None = None
    tracking_number: str | None = None


@dataclass
class OrderState:
    status: str  # an OrderStatus value
    needs_attention: bool = False
    failure_reason: str | None = None


def workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, input: CheckoutInput) -> CheckoutResult:
        raise NotImplementedError

    @workflow.query
    def state(self) -> OrderState:
        raise NotImplementedError

    @workflow.update
    async def cancel(self, request: CancelRequest) -> OrderState:
        raise NotImplementedError

    @workflow.update
    async def ship(self, request: ShipRequest) -> OrderState:
        raise NotImplementedError

    @workflow.update
    async def deliver(self) -> OrderState:
        raise NotImplementedError
