"""Orders: checkout, reading orders and their timeline, cancel, and the admin's ship/deliver.

Reads come from the PostgreSQL read model that the saga's activities keep
current, so listing and showing orders never asks Temporal (one order's
loading, public form and owner check: api/order_reads.py). Changes go to
the order's workflow (see api/checkout.py and api/order_actions.py). The
``Idempotency-Key`` and ``Prefer`` headers: api/order_headers.py.

The ``x as x`` imports are re-exports: the storefront pages (api/web/)
import ``idempotency_key``, ``owned_order`` and ``to_public`` from here.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select
from temporalio.client import Client

from api.admin_timeline import record_admin_action
from api.app import Resources
from api.auth.recovery import VerifiedEmail
from api.checkout import place_order
from api.deps import AdminUser, CurrentUser, ResourcesDep, TemporalClient
from api.order_actions import RESULT_TIMEOUT_SECONDS, Action, request_change, wait_for_read_model
from api.order_headers import IDEMPOTENCY_KEY_PARAMETER, IdempotencyKey, PreferWait
from api.order_reads import (
    OrderRecord,
    OwnedOrder,
    load_order,
    placed_order_answer,
    to_public,
    with_payments,
)
from api.pagination import PageDep
from api.ratelimit import CheckoutRateLimit
from api.schemas.orders import (
    CancelBody,
    OrderCreate,
    OrderList,
    OrderPublic,
    ShipBody,
    TimelineEventPublic,
    TimelinePublic,
)
from api.tokens import Principal
from core.models import Order, OrderEvent, OrderStatus

router = APIRouter(prefix="/orders", tags=["orders"])

# After the saga reports a change, how long to wait for its row to show it.
READ_MODEL_WAIT_SECONDS = 5.0
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


# --- routes ---------------------------------------------------------------


@router.post(
    "",
    status_code=202,
    response_model=OrderPublic,
    responses={
        200: {"description": "settled within the Prefer: wait time", "model": OrderPublic},
        400: {"description": "missing or bad Idempotency-Key or Prefer", **_PROBLEM},
        403: {"description": "email not verified (when required)", **_PROBLEM},
        409: {"description": "the Idempotency-Key was used with another body", **_PROBLEM},
        422: {"description": "invalid order", **_PROBLEM},
        429: {"description": "too many checkouts; see Retry-After", **_PROBLEM},
        503: {"description": "Temporal unreachable; retry with the same key", **_PROBLEM},
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
async def create_order(
    principal: CurrentUser,
    _verified: VerifiedEmail,
    _rate: CheckoutRateLimit,
    key: IdempotencyKey,
    wait: PreferWait,
    client: TemporalClient,
    resources: ResourcesDep,
    body: OrderCreate,
    response: Response,
) -> OrderPublic:
    """Check out: price the items from the catalog and start the order's saga."""
    placement = await place_order(
        resources.sessions,
        client,
        resources.settings,
        customer=principal,
        key=key,
        body=body,
        wait_seconds=wait or 0,
    )
    return await placed_order_answer(resources.sessions, placement, wait, response)


@router.get("", response_model=OrderList)
async def list_orders(
    principal: CurrentUser,
    resources: ResourcesDep,
    page: PageDep,
    status: Annotated[OrderStatus | None, Query(description="only orders in this state")] = None,
    customer_id: Annotated[
        uuid.UUID | None, Query(description="admins: only this customer's orders")
    ] = None,
    needs_attention: Annotated[
        bool | None, Query(description="only orders that need (or do not need) a person")
    ] = None,
) -> OrderList:
    """The caller's orders, newest first; admins see everyone's and may filter."""
    stmt = select(Order)
    if not principal.is_admin:
        # A customer's customer_id filter can only narrow their own orders.
        stmt = stmt.where(Order.customer_id == principal.user_id)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if needs_attention is not None:
        stmt = stmt.where(Order.needs_attention == needs_attention)
    async with resources.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        orders = list(
            await session.scalars(
                stmt.order_by(Order.created_at.desc(), Order.id.desc())
                .limit(page.limit)
                .offset(page.offset)
            )
        )
        records = await with_payments(session, orders)
    return OrderList(items=[to_public(r) for r in records], total=count or 0)


@router.get("/{order_id}", response_model=OrderPublic, responses={404: _PROBLEM})
async def get_order(record: OwnedOrder) -> OrderPublic:
    """One order, for its owner or an admin."""
    return to_public(record)


@router.get("/{order_id}/timeline", response_model=TimelinePublic, responses={404: _PROBLEM})
async def get_timeline(record: OwnedOrder, resources: ResourcesDep) -> TimelinePublic:
    """Every step, retry, compensation and notification of the order, in order."""
    async with resources.sessions() as session:
        events = await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == record.order.id).order_by(OrderEvent.id)
        )
        return TimelinePublic(events=[TimelineEventPublic.model_validate(e) for e in events])


async def change_order(
    resources: Resources,
    client: Client,
    record: OrderRecord,
    action: Action,
    principal: Principal,
    response: Response,
    wait: int | None,
    *,
    reason: str | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
) -> OrderPublic:
    """Ask the saga for the change; answer as ``POST /orders`` does with ``Prefer: wait``.

    200 with the settled order if the change finished within the wait, else
    202 with the order as it is now (the saga finishes the change on its
    own). Without ``Prefer: wait`` the wait is RESULT_TIMEOUT_SECONDS.
    """
    state = await request_change(
        client,
        record.order,
        action,
        requested_by=principal.user_id,
        reason=reason,
        carrier=carrier,
        tracking_number=tracking_number,
        accept_timeout=timedelta(seconds=resources.settings.update_accept_timeout_seconds),
        wait_seconds=RESULT_TIMEOUT_SECONDS if wait is None else wait,
    )
    if principal.is_admin:
        # The saga's own lines do not say which admin asked (see
        # api/admin_timeline.py); the update was accepted, so say it here.
        await record_admin_action(
            resources.sessions, record.order.id, principal, action.name.lower()
        )
    if wait is not None:
        response.headers["Preference-Applied"] = f"wait={wait}"
    if state is None:
        response.status_code = 202
    else:
        await wait_for_read_model(
            resources.sessions, record.order.id, state.status, READ_MODEL_WAIT_SECONDS
        )
    fresh = await load_order(resources.sessions, record.order.id)
    assert fresh is not None  # orders are never deleted
    return to_public(fresh)


_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted, not finished within the wait", "model": OrderPublic},
    400: {"description": "bad Prefer header", **_PROBLEM},
    404: _PROBLEM,
    409: {"description": "the order's state does not allow this", **_PROBLEM},
    503: {"description": "the order's processing cannot be reached; retry", **_PROBLEM},
}


@router.post("/{order_id}/cancel", response_model=OrderPublic, responses=_CHANGE_RESPONSES)
async def cancel_order(
    record: OwnedOrder,
    principal: CurrentUser,
    client: TemporalClient,
    resources: ResourcesDep,
    wait: PreferWait,
    response: Response,
    body: CancelBody | None = None,
) -> OrderPublic:
    """Cancel before shipping: the payment is refunded in full and the stock released."""
    reason = body.reason if body is not None else None
    return await change_order(
        resources, client, record, Action.CANCEL, principal, response, wait, reason=reason
    )


@router.post(
    "/{order_id}/ship",
    response_model=OrderPublic,
    responses={403: _PROBLEM, **_CHANGE_RESPONSES},
)
async def ship_order(
    admin: AdminUser,
    record: OwnedOrder,
    client: TemporalClient,
    resources: ResourcesDep,
    wait: PreferWait,
    response: Response,
    body: ShipBody | None = None,
) -> OrderPublic:
    """Admin: hand a confirmed order to the carrier."""
    carrier = body.carrier if body is not None else None
    tracking = body.tracking_number if body is not None else None
    return await change_order(
        resources,
        client,
        record,
        Action.SHIP,
        admin,
        response,
        wait,
        carrier=carrier,
        tracking_number=tracking,
    )


@router.post(
    "/{order_id}/deliver",
    response_model=OrderPublic,
    responses={403: _PROBLEM, **_CHANGE_RESPONSES},
)
async def deliver_order(
    admin: AdminUser,
    record: OwnedOrder,
    client: TemporalClient,
    resources: ResourcesDep,
    wait: PreferWait,
    response: Response,
) -> OrderPublic:
    """Admin: record that a shipped order arrived."""
    return await change_order(resources, client, record, Action.DELIVER, admin, response, wait)
