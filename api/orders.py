"""Orders: checkout, reading orders and their timeline, cancel, and the admin's ship/deliver.

Reads come from the PostgreSQL read model that the saga's activities keep
current, so listing and showing orders never asks Temporal. Changes go to
the order's workflow (see api/checkout.py and api/order_actions.py).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy import func, select
from temporalio.client import Client

from api.app import Resources
from api.auth.recovery import VerifiedEmail
from api.checkout import place_order
from api.deps import AdminUser, CurrentUser, ResourcesDep, TemporalClient
from api.errors import ProblemError
from api.order_actions import RESULT_TIMEOUT_SECONDS, Action, request_change, wait_for_read_model
from api.pagination import PageDep
from api.ratelimit import CheckoutRateLimit
from api.schemas.orders import (
    CancelBody,
    OrderCreate,
    OrderItemPublic,
    OrderList,
    OrderPublic,
    PaymentPublic,
    ShipBody,
    TimelineEventPublic,
    TimelinePublic,
)
from api.tokens import Principal
from core.db import SessionFactory
from core.models import Order, OrderEvent, OrderStatus, Payment

router = APIRouter(prefix="/orders", tags=["orders"])

MAX_WAIT_SECONDS = 30
# After the saga reports a change, how long to wait for its row to show it.
READ_MODEL_WAIT_SECONDS = 5.0
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_KEY_PATTERN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


# --- reading --------------------------------------------------------------


@dataclass(frozen=True)
class OrderRecord:
    """An order with its payment record, loaded in one short session."""

    order: Order
    payment: Payment | None


async def load_order(sessions: SessionFactory, order_id: uuid.UUID) -> OrderRecord | None:
    # A fresh session each time: callers re-read after the saga moved on.
    async with sessions() as session:
        # The order and its payment in one query (its lines follow in one more).
        row = (
            await session.execute(
                select(Order, Payment)
                .outerjoin(Payment, Payment.order_id == Order.id)
                .where(Order.id == order_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return OrderRecord(row[0], row[1])


def to_public(record: OrderRecord) -> OrderPublic:
    order, payment = record.order, record.payment
    return OrderPublic(
        id=order.id,
        status=order.status.value,
        items=[
            OrderItemPublic(
                product_id=item.product_id,
                sku=item.sku,
                name=item.name,
                quantity=item.quantity,
                unit_price=item.unit_price,
            )
            for item in order.items
        ],
        total=order.total,
        currency=order.currency,
        shipping_address=order.shipping_address,
        # The token is never part of an answer.
        payment=None
        if payment is None
        else PaymentPublic(
            status=payment.status,
            amount=payment.amount,
            refunded_amount=payment.refunded_amount,
        ),
        failure_reason=order.failure_reason,
        needs_attention=order.needs_attention,
        cancel_reason=order.cancel_reason,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


async def owned_order(
    order_id: str, principal: CurrentUser, resources: ResourcesDep
) -> OrderRecord:
    """The order at this path if the caller owns it or is an admin; 404 otherwise.

    Someone else's order answers exactly like a missing one, so order IDs
    cannot be probed.
    """
    not_found = ProblemError(404, "no order with this id", code="order-not-found")
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        raise not_found from None
    record = await load_order(resources.sessions, oid)
    if record is None or not (principal.is_admin or record.order.customer_id == principal.user_id):
        raise not_found
    return record


OwnedOrder = Annotated[OrderRecord, Depends(owned_order)]


# --- checkout headers -----------------------------------------------------


# Documented by hand (the header itself is declared optional so that its
# absence is the contract's 400, not a 422): required, with its real rules,
# so a client generated from the document always sends a usable key.
_IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "a client-chosen key (at most 255 printable ASCII characters); "
    "a retry with the same key and body returns the same order",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
        "pattern": f"^{_KEY_PATTERN.pattern}$",
    },
}


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None,
) -> str:
    if key is None or not key.strip():
        raise ProblemError(400, "the Idempotency-Key header is required", code="idempotency-key")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not _KEY_PATTERN.fullmatch(key):
        raise ProblemError(
            400,
            f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
            "printable ASCII characters",
            code="idempotency-key",
        )
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


async def prefer_wait(
    prefer: Annotated[
        str | None,
        Header(description=f"`wait=N` (0..{MAX_WAIT_SECONDS}): wait up to N s for the outcome"),
    ] = None,
) -> int | None:
    """The ``wait`` preference of a ``Prefer`` header (RFC 7240), if any."""
    if prefer is None:
        return None
    for preference in prefer.split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        if name.strip().lower() != "wait":
            continue  # other preferences are not ours to refuse
        value = value.strip().strip('"')
        if not value.isdigit() or len(value) > 2 or int(value) > MAX_WAIT_SECONDS:
            raise ProblemError(
                400,
                f"Prefer: wait must be a whole number of seconds from 0 to {MAX_WAIT_SECONDS}",
                code="invalid-prefer",
            )
        return int(value)
    return None


PreferWait = Annotated[int | None, Depends(prefer_wait)]


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
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY_PARAMETER]},
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
        customer_id=principal.user_id,
        key=key,
        body=body,
        wait_seconds=wait or 0,
    )
    response.headers["Location"] = f"/orders/{placement.order_id}"
    if placement.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    record = await load_order(resources.sessions, placement.order_id)
    assert record is not None  # orders are never deleted
    if wait is not None:
        response.headers["Preference-Applied"] = f"wait={wait}"
        if record.order.status.settled:
            response.status_code = 200
    return to_public(record)


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
        payments = {
            p.order_id: p
            for p in await session.scalars(
                select(Payment).where(Payment.order_id.in_([o.id for o in orders]))
            )
        }
    return OrderList(
        items=[to_public(OrderRecord(o, payments.get(o.id))) for o in orders],
        total=count or 0,
    )


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


async def _change(
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
    return await _change(
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
    return await _change(
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
    return await _change(resources, client, record, Action.DELIVER, admin, response, wait)
