"""Cancel, ship and deliver: Temporal Updates on an order's saga, mapped to HTTP.

The workflow decides whether a change is allowed (its update validators
reject at once from a state that does not allow it), by the rules of
``workflows/order_rules.py``. From the same rules this module refuses, with
no round trip to Temporal, an action that no status the order can still
reach allows (the read model's status); otherwise it turns each way an
Update can end into a precise answer:

- rejected by the validator or failed in the handler -> 409;
- the saga already finished (Temporal answers NOT_FOUND) -> 409;
- not accepted in time (no worker polling) or Temporal unreachable -> 503.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from sqlalchemy import select
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ProblemError
from core.db import SessionFactory
from core.models import Order
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, OrderState, ShipRequest, workflow_id

# Action is re-exported: the routes name the changes through this module.
from workflows.order_rules import Action as Action
from workflows.order_rules import never_allowed

log = logging.getLogger(__name__)

# How long a worker may take to accept an update before we answer 503:
# Settings.update_accept_timeout_seconds, passed in as accept_timeout.
DEFAULT_ACCEPT_TIMEOUT = timedelta(seconds=10)
# How long the request waits for an accepted update to finish when the client
# sent no ``Prefer: wait``, so the common case answers with the settled order;
# after that it answers 202 with the order as it is, and the saga finishes
# the change on its own.
RESULT_TIMEOUT_SECONDS = 10.0
_READ_MODEL_POLL_SECONDS = 0.1


def _conflict(order: Order, action: Action, why: str | None = None) -> ProblemError:
    # The saga's own refusal is the most precise reason; the read model's
    # status is what the client can see, so it goes along either way.
    detail = why or f"the order is {order.status.value} and cannot be {action.value}"
    return ProblemError(
        409, detail, code="order-state-conflict", extra={"order_status": order.status.value}
    )


def _unavailable(detail: str) -> ProblemError:
    return ProblemError(503, detail, code="temporal-unavailable", headers={"Retry-After": "5"})


async def _start(
    client: Client,
    order: Order,
    action: Action,
    *,
    reason: str | None,
    requested_by: uuid.UUID,
    carrier: str | None,
    tracking_number: str | None,
    accept_timeout: timedelta,
) -> WorkflowUpdateHandle[OrderState]:
    handle = client.get_workflow_handle_for(OrderWorkflow.run, workflow_id(str(order.id)))
    stage = WorkflowUpdateStage.ACCEPTED
    if action is Action.CANCEL:
        return await handle.start_update(
            OrderWorkflow.cancel,
            CancelRequest(reason=reason, requested_by=str(requested_by)),
            wait_for_stage=stage,
            rpc_timeout=accept_timeout,
        )
    if action is Action.SHIP:
        return await handle.start_update(
            OrderWorkflow.ship,
            ShipRequest(carrier=carrier, tracking_number=tracking_number),
            wait_for_stage=stage,
            rpc_timeout=accept_timeout,
        )
    return await handle.start_update(
        OrderWorkflow.deliver, wait_for_stage=stage, rpc_timeout=accept_timeout
    )


async def request_change(
    client: Client,
    order: Order,
    action: Action,
    *,
    requested_by: uuid.UUID,
    reason: str | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    accept_timeout: timedelta = DEFAULT_ACCEPT_TIMEOUT,
    wait_seconds: float = RESULT_TIMEOUT_SECONDS,
) -> OrderState | None:
    """Ask the saga for ``action``; the state it reports, or None if still running.

    The update is accepted (or refused) first; then its result is awaited
    for ``wait_seconds`` at most (the ``Prefer: wait`` of the request).

    Raises a 409 ProblemError when the saga refuses, 503 when it cannot be reached.
    """
    if never_allowed(action, order.status):
        raise _conflict(order, action)
    try:
        update = await _start(
            client,
            order,
            action,
            reason=reason,
            requested_by=requested_by,
            carrier=carrier,
            tracking_number=tracking_number,
            accept_timeout=accept_timeout,
        )
    except WorkflowUpdateRPCTimeoutOrCancelledError as err:
        raise _unavailable(
            "the order's processing did not accept the request in time; try again shortly"
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # The workflow has completed: the order reached an end state the
            # read model may not show yet.
            raise _conflict(
                order,
                action,
                f"the order's processing has already finished; it cannot be {action.value}",
            ) from err
        log.warning("update %s of order %s failed: %s", action.name, order.id, err.status)
        raise _unavailable("the order service cannot reach Temporal right now") from err
    try:
        # asyncio.timeout, not wait_for: the result is awaited in this task, so
        # an outcome already known (a validator's refusal comes back with the
        # acceptance) is raised even with no time to wait; wait_for(..., 0)
        # would cancel it unread and answer 202 for a refused change.
        async with asyncio.timeout(wait_seconds):
            return await update.result()
    except WorkflowUpdateFailedError as err:
        # A validator rejection arrives here: start_update returns the
        # handle with the failed outcome already known.
        cause = err.cause
        raise _conflict(order, action, str(cause) if cause is not None else None) from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # Accepted, not finished yet: the saga completes it on its own.
        return None
    except RPCError as err:
        log.warning("waiting on update %s of order %s: %s", action.name, order.id, err.status)
        return None


async def wait_for_read_model(
    sessions: SessionFactory, order_id: uuid.UUID, status: str, seconds: float
) -> None:
    """Wait (bounded) until the read model shows ``status``.

    The workflow reports its state as soon as it changes; the activity that
    writes the row may land a moment later, and the client should see the
    order it was told about.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        async with sessions() as session:
            current = await session.scalar(select(Order.status).where(Order.id == order_id))
        if current is None or current.value == status:
            return
        await asyncio.sleep(_READ_MODEL_POLL_SECONDS)
