"""The console's order table and an order's progress: the ``/admin/orders`` routes.

``search_orders`` picks the orders from the read model alone (cheap,
indexed; the rule is in ``api/order_search.py``); only when asked for stuck
orders does it describe each row's saga in Temporal, a page at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from temporalio.client import Client

from api.app import Resources
from api.deps import AdminUser, ResourcesDep, TemporalClient
from api.errors import problem_responses
from api.order_reads import parse_order_id, to_public, with_payments
from api.order_search import last_progress_at, order_query
from api.pagination import Page, PageDep
from api.progress import build_progress, order_progress, retry_now
from api.schemas.progress import (
    AdminOrderFilters,
    AdminOrderList,
    AdminOrderRow,
    OrderProgress,
)
from api.workflow_progress import read_saga
from core.models import Order
from workflows.checkout_io import workflow_id

router = APIRouter(prefix="/admin/orders", tags=["admin"])

# Describing sagas in Temporal for one page: a few at a time, so a page of
# 100 stuck orders does not open 100 calls at once.
DESCRIBE_CONCURRENCY = 8


async def _progress_of(
    resources: Resources, client: Client, orders: list[Order]
) -> dict[uuid.UUID, OrderProgress]:
    async with resources.sessions() as session:
        result = await session.execute(
            select(Order.id, last_progress_at()).where(Order.id.in_([o.id for o in orders]))
        )
        since: dict[uuid.UUID, datetime] = dict(result.all())
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def one(order: Order) -> OrderProgress:
        async with gate:
            saga = await read_saga(client, workflow_id(str(order.id)))
        return build_progress(resources.settings, order, since[order.id], saga)

    found = await asyncio.gather(*(one(order) for order in orders))
    return {progress.order_id: progress for progress in found}


async def search_orders(
    resources: Resources, client: Client, filters: AdminOrderFilters, page: Page
) -> AdminOrderList:
    """The orders matching ``filters``, newest first, one page of them.

    With ``filters.stuck`` each row carries its progress (one describe and
    one history page per row); without, no row does.
    """
    stmt = order_query(filters, resources.settings.stuck_after_seconds)
    async with resources.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = (
            await session.execute(
                stmt.order_by(Order.created_at.desc(), Order.id.desc())
                .limit(page.limit)
                .offset(page.offset)
            )
        ).all()
        orders = [order for order, _ in rows]
        records = await with_payments(session, orders)
    progress = await _progress_of(resources, client, orders) if filters.stuck and orders else {}
    return AdminOrderList(
        items=[
            AdminOrderRow(
                order=to_public(record),
                customer_email=email,
                progress=progress.get(record.order.id),
            )
            for record, (_, email) in zip(records, rows, strict=True)
        ],
        total=total or 0,
    )


@router.get("", response_model=AdminOrderList, responses=problem_responses(403, 422, 503))
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
    "/{order_id}/progress",
    response_model=OrderProgress,
    responses=problem_responses(403, 404, 503),
)
async def get_order_progress(
    admin: AdminUser, order_id: str, resources: ResourcesDep, client: TemporalClient
) -> OrderProgress:
    """Admin: what the order's saga is doing and which step it waits on."""
    return await order_progress(resources, client, parse_order_id(order_id))


@router.post(
    "/{order_id}/retry",
    response_model=OrderProgress,
    status_code=202,
    responses=problem_responses(403, 404, 409, 503),
)
async def retry_order_step(
    admin: AdminUser, order_id: str, resources: ResourcesDep, client: TemporalClient
) -> OrderProgress:
    """Admin: the step waiting on its back-off retries now (regular activities only)."""
    return await retry_now(resources, client, parse_order_id(order_id), admin)
