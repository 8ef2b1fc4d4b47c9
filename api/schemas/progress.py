"""Progress schemas: what each order is waiting on, and the admin order table.

``WaitingOn`` is one step the saga waits on (read from Temporal's description
of the workflow and the tail of its history); ``OrderProgress`` is the answer
of ``GET /admin/orders/{id}/progress``; ``AdminOrderRow``/``AdminOrderList``
and ``AdminOrderFilters`` are the console's order table (``GET /admin/orders``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

from api.schemas.orders import OrderPublic
from core.order_status import OrderStatus

# A month: longer means "never stuck", and a huge number would overflow a datetime.
MAX_STUCK_AFTER_SECONDS = 30 * 24 * 3600

WorkflowState = Literal[
    "running",
    "completed",
    "failed",
    "cancelled",
    "terminated",
    "timed_out",
    "continued_as_new",
    "unknown",
]


class WaitingOn(BaseModel):
    step: str = Field(description="the activity the saga waits on, e.g. charge_payment")
    kind: Literal["activity", "local_activity"]
    attempt: int = Field(description="the attempt running or the last one that ran (1-based)")
    last_failure: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


class WorkflowRef(BaseModel):
    id: str
    run_id: str | None
    state: str = Field(description="one of: " + ", ".join(get_args(WorkflowState)))
    ui_url: str | None


class OrderProgress(BaseModel):
    order_id: uuid.UUID
    status: str
    needs_attention: bool
    workflow: WorkflowRef
    waiting_on: list[WaitingOn]
    since: datetime = Field(description="when the order last made progress")


class AdminOrderRow(BaseModel):
    order: OrderPublic
    customer_email: str
    progress: OrderProgress | None = Field(
        description="only when the list was asked for stuck orders (stuck=true)"
    )


class AdminOrderList(BaseModel):
    items: list[AdminOrderRow]
    total: int = Field(description="how many orders match, across all pages")


class AdminOrderFilters(BaseModel):
    """The console's order filters (query parameters of ``GET /admin/orders``)."""

    status: OrderStatus | None = None
    needs_attention: bool | None = None
    customer: str | None = Field(
        default=None, max_length=320, description="the customer's email, exact, any case"
    )
    customer_id: uuid.UUID | None = None
    created_from: date | None = Field(default=None, description="UTC day, included")
    created_to: date | None = Field(default=None, description="UTC day, included")
    stuck: bool = Field(
        default=False,
        description="only stuck orders (docs/OBSERVABILITY.md), each with its progress",
    )
    stuck_after_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STUCK_AFTER_SECONDS,
        description="overrides ORDERSAGA_STUCK_AFTER_SECONDS for this request",
    )
