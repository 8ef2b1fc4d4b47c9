"""What goes in and out of the checkout saga: its input, result, update payloads and state.

Imported by the API (to start the saga and read its answers) and by the
workflow. The workflow imports it passed through the sandbox: a module of
plain dataclasses holds no state a workflow run could leak into the next,
and re-creating its classes for every run was a measurable part of starting
a saga (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass


def workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


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
    # True once a cancel was accepted, while its compensation is still running.
    cancel_requested: bool = False
