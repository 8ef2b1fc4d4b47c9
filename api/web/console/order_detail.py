"""One order in the console: what the shop knows and what its saga is doing.

The page reads the order as the REST routes do (api/order_reads.py, the
timeline of api/orders.py), the notifications sent, and the order's progress
(api/progress.py). Which actions it offers comes from the saga's own rules
(workflows/order_rules.py), so it never shows a button the order's status
cannot take. A notice or alert after an action is chosen by a code from a
fixed list here: nothing from the query string is ever shown as text.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from temporalio.client import Client

from api.app import Resources
from api.deps import OptionalTemporal, ResourcesDep
from api.errors import ProblemError
from api.order_reads import OrderRecord, load_order, order_not_found, parse_order_id, to_public
from api.orders import get_timeline
from api.progress import order_progress
from api.schemas.progress import OrderProgress
from api.tokens import Principal
from api.web.console.access import PageAdmin
from api.web.render import render
from api.workflow_progress import waits_on_backoff
from core.models import Notification, OrderStatus
from workflows.order_rules import ALLOWED_FROM, Action

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

NOTICES = {
    "shipped": "The order is shipped.",
    "delivered": "The order is delivered.",
    "cancelled": "The order is cancelled; a paid order is refunded in full.",
    "accepted": "The saga accepted the change and is still carrying it out.",
    "retried": "The waiting step was asked to retry now.",
}
# Alerts by the problem type of the refusal (api/order_actions.py, api/progress.py).
ALERTS = {
    "order-state-conflict": "The order's state does not allow this now.",
    "temporal-unavailable": "Temporal cannot be reached right now; try again shortly.",
    "nothing-to-retry": "Nothing is waiting on a retry any more.",
    "retry-not-possible": "This step cannot be retried from here; it retries by itself.",
}
ACTION_NAMES = {"ship": "Ship", "deliver": "Deliver", "cancel": "Cancel", "retry": "Retry"}


async def find_order(resources: Resources, order_id: str) -> OrderRecord:
    """The order at this path (any customer's: the console is for admins)."""
    record = await load_order(resources.sessions, parse_order_id(order_id))
    if record is None:
        raise order_not_found()
    return record


def allowed_actions(status: OrderStatus) -> set[str]:
    # Offered only from the statuses the saga takes each action from.
    return {action.name.lower() for action in Action if status in ALLOWED_FROM[action]}


def can_retry(progress: OrderProgress | None) -> bool:
    """A regular step waits on its back-off, by ``retry_now``'s own rule.

    (A local step on its retry timer cannot be retried: ``retry_now`` refuses it.)
    """
    return progress is not None and any(
        w.kind == "activity" and waits_on_backoff(w) for w in progress.waiting_on
    )


async def _progress(
    resources: Resources, client: Client | None, order_id: uuid.UUID
) -> OrderProgress | None:
    # The page still shows the order when Temporal is away; the panel says so.
    if client is None:
        return None
    try:
        return await order_progress(resources, client, order_id)
    except ProblemError as err:
        if err.status_code != 503:  # only "Temporal unreachable" leaves the panel unknown
            raise
        log.warning("no progress for order %s: Temporal unreachable", order_id)
        return None


async def _notifications(resources: Resources, order_id: uuid.UUID) -> list[Notification]:
    async with resources.sessions() as session:
        return list(
            await session.scalars(
                select(Notification)
                .where(Notification.order_id == order_id)
                .order_by(Notification.created_at, Notification.id)
            )
        )


async def order_context(
    resources: Resources, client: Client | None, record: OrderRecord
) -> dict[str, Any]:
    order = to_public(record)
    progress = await _progress(resources, client, order.id)
    return {
        "order": order,
        "events": (await get_timeline(record, resources)).events,
        "notifications": await _notifications(resources, order.id),
        "progress": progress,
        "actions": allowed_actions(OrderStatus(order.status)),
        "can_retry": can_retry(progress),
    }


async def render_order(
    request: Request,
    admin: Principal,
    resources: Resources,
    client: Client | None,
    record: OrderRecord,
    *,
    status_code: int = 200,
    notice: str | None = None,
    alert: str | None = None,
    field_errors: dict[str, str] | None = None,
) -> Response:
    context = await order_context(resources, client, record)
    return await render(
        request,
        "console/order.html",
        admin,
        status_code=status_code,
        notice=notice,
        alert=alert,
        field_errors=field_errors or {},
        **context,
    )


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    request: Request,
    order_id: str,
    admin: PageAdmin,
    resources: ResourcesDep,
    client: OptionalTemporal,
) -> Response:
    record = await find_order(resources, order_id)
    params = request.query_params
    alert = ALERTS.get(params.get("alert", ""))
    if alert is not None and params.get("action") in ACTION_NAMES:
        alert = f"{ACTION_NAMES[params['action']]} refused: {alert[0].lower()}{alert[1:]}"
    return await render_order(
        request,
        admin,
        resources,
        client,
        record,
        notice=NOTICES.get(params.get("notice", "")),
        alert=alert,
    )
