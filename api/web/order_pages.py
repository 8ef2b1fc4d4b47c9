"""Order pages: my orders, one order (updating itself), and cancelling it.

They call the REST routes' functions (api/orders.py): the same ownership
check, read model, timeline and cancel. The order page's small script
(static/order-live.js) polls ``/shop/orders/{id}/live``, a page-only
fragment of the same template, with the cookie session.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.cart_store import read_cart
from api.deps import ResourcesDep, TemporalClient
from api.errors import ProblemError
from api.order_reads import owned_order, to_public
from api.orders import cancel_order, get_timeline, list_orders
from api.pagination import Page
from api.schemas.orders import CancelBody, OrderPublic
from api.tokens import Principal
from api.web.csrf import form_token, require_csrf
from api.web.forms import posted
from api.web.render import render, templates
from api.web.session import PageUser
from core.models import OrderStatus
from workflows.order_rules import Action, never_allowed

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

MAX_LISTED = 100


def _cancellable(order: OrderPublic) -> bool:
    # The states the cancel route refuses without asking the saga: the same
    # rule (workflows/order_rules.py) the saga and the REST route use.
    return not never_allowed(Action.CANCEL, OrderStatus(order.status))


def _settled_for_good(order: OrderPublic) -> bool:
    """Nothing about this order will change by itself any more: the page stops polling."""
    status = OrderStatus(order.status)
    if status is OrderStatus.CANCELLED:
        payment = order.payment
        return payment is None or payment.status != "captured"
    return status in {OrderStatus.REJECTED, OrderStatus.PAYMENT_FAILED, OrderStatus.DELIVERED}


async def _order_context(order_id: str, user: Principal, resources: ResourcesDep) -> dict[str, Any]:
    record = await owned_order(order_id, user, resources)
    order = to_public(record)
    timeline = await get_timeline(record, resources)
    return {
        "order": order,
        "events": timeline.events,
        "cancellable": _cancellable(order),
        "live": not _settled_for_good(order),
    }


@router.get("/shop/orders", response_class=HTMLResponse)
async def my_orders(request: Request, user: PageUser, resources: ResourcesDep) -> Response:
    found = await list_orders(user, resources, Page(limit=MAX_LISTED, offset=0), None, None, None)
    return await render(request, "orders.html", user, orders=found.items, total=found.total)


@router.get("/shop/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    request: Request, order_id: str, user: PageUser, resources: ResourcesDep
) -> Response:
    context = await _order_context(order_id, user, resources)
    return await render(request, "order.html", user, error=None, **context)


@router.get("/shop/orders/{order_id}/live", response_class=HTMLResponse)
async def order_live(
    request: Request, order_id: str, user: PageUser, resources: ResourcesDep
) -> Response:
    """The order's changing part alone, for the page's script to swap in."""
    context = await _order_context(order_id, user, resources)
    context["csrf_token"] = form_token(request)
    # The cart empties when the order is confirmed: the page's badge follows.
    context["cart_count"] = (await read_cart(resources.sessions, user.user_id)).count
    response = templates.TemplateResponse(request, "order_live.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@forms.post("/shop/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request,
    order_id: str,
    user: PageUser,
    resources: ResourcesDep,
    client: TemporalClient,
) -> Response:
    data = await posted(request)
    record = await owned_order(order_id, user, resources)
    try:
        body = CancelBody.model_validate({"reason": data.get("reason")})
        # No Prefer: wait: the page waits as long as the REST default, then
        # shows the order as it is (the page follows it live from there).
        await cancel_order(record, user, client, resources, None, Response(), body)
    except (ValidationError, ProblemError) as err:
        context = await _order_context(order_id, user, resources)
        status = err.status_code if isinstance(err, ProblemError) else 422
        error = (
            "This order can no longer be cancelled."
            if status == 409
            else "The order could not be cancelled. Please try again."
        )
        return await render(request, "order.html", user, status_code=status, error=error, **context)
    return RedirectResponse(f"/shop/orders/{record.order.id}", status_code=303)
