"""The console's order lists: the filtered orders table and the stuck view.

Both are one call to ``search_orders`` (api/admin_orders.py), the function
behind ``GET /admin/orders``: the table reads the read model only, the stuck
view (``stuck=True``) adds what each order's saga waits on.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.admin_orders import search_orders
from api.deps import ResourcesDep, TemporalClient
from api.pagination import Page
from api.web.console.access import PageAdmin
from api.web.console.order_filters import read_filters
from api.web.render import render
from core.models import OrderStatus

router = APIRouter(include_in_schema=False)

PER_PAGE = 50


def _pages(total: int) -> int:
    return max(1, -(-total // PER_PAGE))


def _page(number: int) -> Page:
    return Page(limit=PER_PAGE, offset=(number - 1) * PER_PAGE)


@router.get("/console/orders", response_class=HTMLResponse)
async def orders_table(
    request: Request, admin: PageAdmin, resources: ResourcesDep, client: TemporalClient
) -> Response:
    query = read_filters(request)
    found = await search_orders(resources, client, query.filters, _page(query.page))
    return await render(
        request,
        "console/orders.html",
        admin,
        rows=found.items,
        total=found.total,
        filters=query.filters,
        statuses=list(OrderStatus),
        page=query.page,
        pages=_pages(found.total),
        pager_query=query.pager_query,
    )


@router.get("/console/stuck", response_class=HTMLResponse)
async def stuck_view(
    request: Request, admin: PageAdmin, resources: ResourcesDep, client: TemporalClient
) -> Response:
    # The stuck view's own filter: how long without progress counts as stuck.
    query = read_filters(request, ("stuck_after_seconds",))
    filters = query.filters.model_copy(update={"stuck": True})
    found = await search_orders(resources, client, filters, _page(query.page))
    return await render(
        request,
        "console/stuck.html",
        admin,
        stuck_after=filters.stuck_after_seconds or resources.settings.stuck_after_seconds,
        rows=found.items,
        total=found.total,
        page=query.page,
        pages=_pages(found.total),
        pager_query=query.pager_query,
    )
