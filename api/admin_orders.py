"""The console's order table and an order's progress: ``/admin/orders`` routes.

``search_orders`` picks the orders from the read model (cheap, indexed); only
when asked for stuck orders does it describe each row's saga in Temporal.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from temporalio.client import Client

from api.app import Resources
from api.deps import AdminUser, ResourcesDep, TemporalClient
from api.errors import ProblemError, problem_responses
from api.order_reads import OrderRecord, to_public
from api.pagination import Page, PageDep
from api.progress import order_progress, retry_now
from api.schemas.progress import (
    AdminOrderFilters,
    AdminOrderList,
    AdminOrderRow,
    OrderProgress,
)
from core.models import Order, Payment, User

router = APIRouter(prefix="/admin/orders", tags=["admin"])


async def search_orders(
    resources: Resources, client: Client, filters: AdminOrderFilters, page: Page
) -> AdminOrderList:
    """The orders matching ``filters``, newest first, one page of them."""
    stmt = select(Order, User.email).join(User, User.id == Order.customer_id)
    if filters.status is not None:
        stmt = stmt.where(Order.status == filters.status)
    async with resources.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = (
            await session.execute(
                stmt.order_by(Order.created_at.desc(), Order.id.desc())
                .limit(page.limit)
                .offset(page.offset)
            )
        ).all()
        ids: list[uuid.UUID] = [order.id for order, _ in rows]
        payments = {
            p.order_id: p
            for p in await session.scalars(select(Payment).where(Payment.order_id.in_(ids)))
        }
        items = [
            AdminOrderRow(
                order=to_public(OrderRecord(order, payments.get(order.id))),
                customer_email=email,
                progress=None,
            )
            for order, email in rows
        ]
    return AdminOrderList(items=items, total=total or 0)


def _order_id(order_id: str) -> uuid.UUID:
    # A malformed id answers like a missing order: the console links by id only.
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise ProblemError(404, "no order with this id", code="order-not-found") from None


@router.get("", response_model=AdminOrderList, responses=problem_responses(403, 422))
async def list_admin_orders(
    admin: AdminUser,
    resources: ResourcesDep,
    client: TemporalClient,
    page: PageDep,
    filters: Annotated[AdminOrderFilters, Query()],
) -> AdminOrderList:
    """Admin: every order, newest first, filtered; ``stuck=true`` adds each row's progress."""
    return await search_orders(resources, client, filters, page)


@router.get(
    "/{order_id}/progress", response_model=OrderProgress, responses=problem_responses(403, 404)
)
async def get_order_progress(
    admin: AdminUser, order_id: str, resources: ResourcesDep, client: TemporalClient
) -> OrderProgress:
    """Admin: what the order's saga is doing and which step it waits on."""
    return await order_progress(resources, client, _order_id(order_id))


@router.post(
    "/{order_id}/retry",
    response_model=OrderProgress,
    status_code=202,
    responses=problem_responses(403, 404, 409),
)
async def retry_order_step(
    admin: AdminUser, order_id: str, resources: ResourcesDep, client: TemporalClient
) -> OrderProgress:
    """Admin: the step waiting on its back-off retries now (regular activities only)."""
    return await retry_now(resources, client, _order_id(order_id), admin)
