"""What is each order waiting on: its progress, read from Temporal, and "retry now".

The read model says where an order stands; Temporal says what its saga is
doing right now. ``order_progress`` joins the two: the order's row and when
it last made progress (the stuck rule's measure) from PostgreSQL, and from Temporal the workflow's
description and the tail of its history (``api/workflow_progress.py``).
``retry_now`` uses Temporal's own ResetActivity for a regular activity in
back-off; a local step's retry timer is the SDK's, which no server operation
fires early, so that is refused (docs/OBSERVABILITY.md explains).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetActivityRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.admin_timeline import record_admin_action
from api.app import Resources
from api.errors import ProblemError
from api.order_reads import order_not_found
from api.order_search import last_progress_at
from api.schemas.progress import OrderProgress, WorkflowRef
from api.tokens import Principal
from api.workflow_progress import SagaView, read_saga, unavailable, waits_on_backoff
from core.models import Order
from core.settings import Settings
from workflows.checkout_io import workflow_id


def ui_url(settings: Settings, wf_id: str) -> str | None:
    base = settings.temporal_ui_base
    if base is None:
        return None
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{wf_id}"


def build_progress(
    settings: Settings, order: Order, since: datetime, saga: SagaView
) -> OrderProgress:
    """One order's progress from its row, when it last made progress, and its saga."""
    wf_id = workflow_id(str(order.id))
    return OrderProgress(
        order_id=order.id,
        status=order.status.value,
        needs_attention=order.needs_attention,
        workflow=WorkflowRef(
            id=wf_id, run_id=saga.run_id, state=saga.state, ui_url=ui_url(settings, wf_id)
        ),
        waiting_on=[step.waiting for step in saga.steps],
        since=since,
    )


async def _load(resources: Resources, order_id: uuid.UUID) -> tuple[Order, datetime]:
    # "Since" is the stuck rule's own measure (api/order_search.py), read by it.
    async with resources.sessions() as session:
        row = (
            await session.execute(select(Order, last_progress_at()).where(Order.id == order_id))
        ).one_or_none()
    if row is None:
        raise order_not_found()
    return row[0], row[1]


async def order_progress(
    resources: Resources, client: Client, order_id: uuid.UUID
) -> OrderProgress:
    """The order's progress; 404 problem when there is no such order."""
    order, since = await _load(resources, order_id)
    saga = await read_saga(client, workflow_id(str(order_id)))
    return build_progress(resources.settings, order, since, saga)


async def retry_now(
    resources: Resources, client: Client, order_id: uuid.UUID, admin: Principal
) -> OrderProgress:
    """Make the step waiting on its back-off retry at once; 409 problem when none can.

    409 ``nothing-to-retry`` when no step waits on a back-off (none pending,
    or the one pending is running its attempt now); 409
    ``retry-not-possible`` when the one waiting is a local step on its timer.
    """
    await _load(resources, order_id)  # 404 first
    wf_id = workflow_id(str(order_id))
    saga = await read_saga(client, wf_id)
    waiting = [step for step in saga.steps if waits_on_backoff(step.waiting)]
    regular = [step for step in waiting if step.activity_id is not None]
    if not regular:
        if waiting:
            raise ProblemError(
                409,
                "the step waits on its own retry timer, which only the worker can fire; "
                "it retries within its back-off",
                code="retry-not-possible",
                extra={"step": waiting[0].waiting.step},
            )
        raise ProblemError(409, "no step of this order waits on a retry", code="nothing-to-retry")
    for step in regular:
        try:
            await client.workflow_service.reset_activity(
                ResetActivityRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=wf_id, run_id=saga.run_id or ""),
                    id=step.activity_id or "",
                    identity=f"ordersaga-admin-{admin.user_id}",
                )
            )
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                # It finished (or the saga did) between our read and the reset.
                raise ProblemError(
                    409, "no step of this order waits on a retry", code="nothing-to-retry"
                ) from err
            if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
                # The server (its version, dynamic config) or our API key's
                # role does not allow activity operations: see OBSERVABILITY.md.
                raise ProblemError(
                    409,
                    "the Temporal server does not allow this client to reset the activity",
                    code="retry-not-possible",
                    extra={"step": step.waiting.step},
                ) from err
            raise unavailable() from err
        await record_admin_action(
            resources.sessions,
            order_id,
            admin,
            "retry",
            f"retry now of {step.waiting.step} (attempt {step.waiting.attempt})",
        )
    return await order_progress(resources, client, order_id)
