"""The dashboard's figures: a few aggregate queries on the read model, one Temporal count.

Shared by the console's home page and ``GET /admin/dashboard``. Counting
comes from PostgreSQL (GROUP BY, never a scan of Temporal); only "sagas in
flight" asks Temporal, and the dashboard still answers when it cannot
(``sagas_in_flight`` is then None, shown as unknown).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import func, or_, select
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import Resources
from api.deps import AdminUser, OptionalTemporal, ResourcesDep
from api.errors import problem_responses
from api.schemas.dashboard import Dashboard, OldestPending
from core.models import Order, OrderStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

IN_FLIGHT_QUERY = "WorkflowType='OrderWorkflow' AND ExecutionStatus='Running'"
# The count is one visibility query; a slow or absent Temporal must not hold
# the dashboard, whose other figures come from PostgreSQL.
COUNT_TIMEOUT_SECONDS = 3.0
_FAILED = (OrderStatus.PAYMENT_FAILED, OrderStatus.REJECTED)


async def sagas_in_flight(client: Client | None) -> int | None:
    if client is None:
        return None
    try:
        async with asyncio.timeout(COUNT_TIMEOUT_SECONDS):
            return (await client.count_workflows(IN_FLIGHT_QUERY)).count
    except (RPCError, TimeoutError) as err:
        log.warning("cannot count running sagas: %s", type(err).__name__)
        return None


async def dashboard(resources: Resources, client: Client | None) -> Dashboard:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour_ago = now - timedelta(hours=1)
    placed_today = func.count().filter(Order.created_at >= midnight)
    changed_last_hour = func.count().filter(Order.updated_at >= hour_ago)
    async with resources.sessions() as session:
        # One pass over today's and the last hour's orders (created_at and
        # updated_at bound it), both figures per status.
        rows = (
            await session.execute(
                select(Order.status, placed_today, changed_last_hour)
                .where(or_(Order.created_at >= midnight, Order.updated_at >= hour_ago))
                .group_by(Order.status)
            )
        ).all()
        oldest = (
            await session.execute(
                select(Order.id, Order.created_at)
                .where(Order.status == OrderStatus.PENDING)
                .order_by(Order.created_at, Order.id)
                .limit(1)
            )
        ).one_or_none()
    today = {status.value: 0 for status in OrderStatus}
    recent = dict.fromkeys(OrderStatus, 0)
    for status, placed, changed in rows:
        today[status.value] = placed
        recent[status] = changed
    return Dashboard(
        as_of=now,
        today_by_status=today,
        last_hour={
            "confirmed": recent[OrderStatus.CONFIRMED],
            "failed": sum(recent[s] for s in _FAILED),
            "cancelled": recent[OrderStatus.CANCELLED],
        },
        sagas_in_flight=await sagas_in_flight(client),
        oldest_pending=None
        if oldest is None
        else OldestPending(id=oldest[0], created_at=oldest[1]),
    )


@router.get("/dashboard", response_model=Dashboard, responses=problem_responses(403))
async def get_dashboard(
    admin: AdminUser, resources: ResourcesDep, client: OptionalTemporal
) -> Dashboard:
    """Admin: orders per status today, the last hour's outcomes, sagas in flight."""
    return await dashboard(resources, client)
