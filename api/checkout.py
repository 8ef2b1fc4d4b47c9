"""Placing an order: validate and price it from the catalog, write it once, start its saga.

The rows and the workflow start are two steps that cannot share a
transaction, so each is made idempotent on its own: the rows are unique per
(customer, Idempotency-Key), and the workflow ID is derived from the order ID
with a conflict policy that makes a repeated start return the running one.
A retry after a crash between the two steps therefore finds the rows and
starts (or finds) the same workflow: never a second order, saga or charge.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import ProblemError
from api.schemas.orders import OrderCreate
from core.db import SessionFactory
from core.models import (
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    User,
)
from core.money import CURRENCY_EXPONENTS, Money, total
from core.settings import Settings
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, workflow_id

log = logging.getLogger(__name__)

# The constraint that makes (customer, Idempotency-Key) name one order.
_IDEMPOTENCY_CONSTRAINT = "uq_orders_customer_id_idempotency_key"


@dataclass(frozen=True)
class PricedLine:
    product: Product
    quantity: int

    @property
    def unit_price(self) -> Money:
        return Money(self.product.price, self.product.currency)


@dataclass(frozen=True)
class Placement:
    order_id: uuid.UUID
    replayed: bool  # an earlier request with the same key made this order


def fingerprint(body: OrderCreate) -> str:
    """SHA-256 of the canonical body: key order and whitespace do not matter."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    names = ", ".join(sorted({e["field"] for e in errors}))
    return ProblemError(
        422, f"invalid order: {names}", code="invalid-order", extra={"errors": errors}
    )


async def price_lines(session: AsyncSession, body: OrderCreate) -> list[PricedLine]:
    """The order's lines priced from the catalog as it is now, or a 422 naming each problem."""
    ids = [line.product_id for line in body.items]
    products = {
        p.id: p for p in (await session.scalars(select(Product).where(Product.id.in_(ids))))
    }
    errors: list[dict[str, str]] = []
    priced: list[PricedLine] = []
    for i, line in enumerate(body.items):
        product = products.get(line.product_id)
        field = f"items[{i}].product_id"
        if product is None:
            errors.append(
                {
                    "field": field,
                    "in": "body",
                    "type": "unknown_product",
                    "message": "unknown product",
                }
            )
        elif not product.active:
            errors.append(
                {
                    "field": field,
                    "in": "body",
                    "type": "product_not_for_sale",
                    "message": "product is not for sale",
                }
            )
        else:
            priced.append(PricedLine(product, line.quantity))
    currencies = sorted({line.product.currency for line in priced})
    if len(currencies) > 1:
        errors.append(
            {
                "field": "items",
                "in": "body",
                "type": "mixed_currencies",
                "message": "all products of one order must share a currency; found "
                + ", ".join(currencies),
            }
        )
    if errors:
        raise _invalid(errors)
    return priced


async def add_order(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    key: str,
    request_fingerprint: str,
    body: OrderCreate,
    lines: list[PricedLine],
    provider: str,
) -> Order:
    """Add a pending order's rows to the session's transaction; the caller commits.

    An order never exists without its lines, its payment record (holding the
    card token) and the first line of its timeline: all go in together.
    """
    currency = lines[0].product.currency
    amount = total([line.unit_price * line.quantity for line in lines], currency)
    order = Order(
        id=uuid.uuid4(),
        customer_id=customer_id,
        status=OrderStatus.PENDING,
        currency=currency,
        total=amount.amount,
        shipping_address=body.shipping_address.model_dump(mode="json", exclude_none=True),
        idempotency_key=key,
        request_fingerprint=request_fingerprint,
        items=[
            OrderItem(
                product_id=line.product.id,
                position=position,
                sku=line.product.sku,
                name=line.product.name,
                quantity=line.quantity,
                unit_price=line.product.price,
            )
            for position, line in enumerate(lines)
        ],
    )
    session.add(order)
    # The order row must exist before the rows that reference it.
    await session.flush()
    session.add(
        Payment(
            order_id=order.id,
            provider=provider,
            token=body.payment.token,
            status=PaymentStatus.PENDING,
            amount=amount.amount,
            refunded_amount=0,
            currency=currency,
        )
    )
    session.add(
        OrderEvent(
            order_id=order.id,
            type="order.placed",
            detail=f"{len(lines)} line(s), total {amount.format()}",
            dedupe_key="order.placed",
        )
    )
    return order


async def _find(session: AsyncSession, customer_id: uuid.UUID, key: str) -> Order | None:
    found: Order | None = await session.scalar(
        select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key)
    )
    return found


def _is_idempotency_clash(err: IntegrityError) -> bool:
    diag = getattr(err.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == _IDEMPOTENCY_CONSTRAINT


@dataclass(frozen=True)
class _SagaStart:
    """The arguments of the order's workflow start, for a plain start and an update-with-start."""

    input: CheckoutInput
    options: dict[str, Any]


def _saga_start(settings: Settings, order: Order, customer_email: str) -> _SagaStart:
    amount = Money(order.total, order.currency)
    return _SagaStart(
        CheckoutInput(
            order_id=str(order.id),
            customer_id=str(order.customer_id),
            total=order.total,
            currency=order.currency,
            payment_deadline_seconds=settings.payment_deadline_seconds,
            provider_timeout_seconds=settings.payment_provider_timeout_seconds,
        ),
        {
            "id": workflow_id(str(order.id)),
            "task_queue": settings.task_queue,
            # A running saga with this ID is returned as is; a finished one
            # is never run again.
            "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.ORDER_STATUS, OrderStatus.PENDING.value),
                    SearchAttributePair(search_attributes.CUSTOMER_ID, str(order.customer_id)),
                    # Major units as a float, for sorting and reading in the
                    # Web UI only; the saga's money stays integer minor units.
                    SearchAttributePair(
                        search_attributes.ORDER_TOTAL,
                        order.total / 10 ** CURRENCY_EXPONENTS[order.currency],
                    ),
                    SearchAttributePair(search_attributes.NEEDS_ATTENTION, False),
                ]
            ),
            "static_summary": f"Order by {customer_email}: {amount.format()}",
        },
    )


async def start_saga(
    client: Client,
    settings: Settings,
    order: Order,
    customer_email: str,
    *,
    wait_seconds: float = 0,
) -> None:
    """Start the order's workflow (starting it again is harmless).

    With ``wait_seconds``, the start carries the saga's ``outcome`` update
    (update-with-start, one request) and returns once the saga has passed its
    pivot or settled as failed, or when the wait is over, whichever is first.
    The saga announces its outcome only after writing it to the read model,
    so the caller reads the outcome from there either way.
    """
    start = _saga_start(settings, order, customer_email)
    try:
        if wait_seconds > 0:
            operation = WithStartWorkflowOperation(OrderWorkflow.run, start.input, **start.options)
            try:
                # asyncio.timeout, not wait_for: the call runs in this task, so
                # the log context its interceptor sets (the saga's IDs) stays.
                async with asyncio.timeout(wait_seconds):
                    await client.execute_update_with_start_workflow(
                        OrderWorkflow.outcome, start_workflow_operation=operation
                    )
                return
            except (
                TimeoutError,
                WorkflowUpdateFailedError,
                WorkflowUpdateRPCTimeoutOrCancelledError,
            ):
                # The wait is over (or the update went wrong): the answer is
                # "still pending". The start may not have reached the server
                # before the wait ran out, so make sure the saga runs.
                pass
        await client.start_workflow(OrderWorkflow.run, start.input, **start.options)
    except WorkflowAlreadyStartedError:
        # The saga of this order already ran to its end: nothing to start.
        pass
    except RPCError as err:
        log.warning("could not start the saga of order %s: %s", order.id, err.status)
        # The rows are written; a retry with the same key starts the saga.
        raise ProblemError(
            503,
            "the order was recorded but its processing could not be started; "
            "retry with the same Idempotency-Key",
            code="temporal-unavailable",
            headers={"Retry-After": "5"},
        ) from err


async def place_order(
    sessions: SessionFactory,
    client: Client,
    settings: Settings,
    *,
    customer_id: uuid.UUID,
    key: str,
    body: OrderCreate,
    wait_seconds: float = 0,
) -> Placement:
    """Place the order of this request, or find the one an earlier try with its key placed.

    ``wait_seconds`` (from ``Prefer: wait``) lets a new or still-pending order
    wait that long for its saga's outcome before this returns.
    """
    request_fingerprint = fingerprint(body)
    # One session, so one pooled connection, for every read and the write.
    async with sessions() as session:
        order = await _find(session, customer_id, key)
        replayed = order is not None
        if order is None:
            lines = await price_lines(session, body)
            try:
                order = await add_order(
                    session,
                    customer_id=customer_id,
                    key=key,
                    request_fingerprint=request_fingerprint,
                    body=body,
                    lines=lines,
                    provider=settings.payment_provider,
                )
                await session.commit()
            except IntegrityError as err:
                # A concurrent request with the same key won the insert.
                await session.rollback()
                if not _is_idempotency_clash(err):
                    raise
                order = await _find(session, customer_id, key)
                if order is None:
                    raise
                replayed = True
        if replayed and order.request_fingerprint != request_fingerprint:
            raise ProblemError(
                409,
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
            )
        # A settled order's saga certainly started; a pending one may be the
        # leftover of a request that wrote its rows but failed to start it.
        start = not replayed or order.status is OrderStatus.PENDING
        email = (
            await session.scalar(select(User.email).where(User.id == customer_id))
            if start
            else None
        )
    if start:
        await start_saga(
            client, settings, order, email or str(customer_id), wait_seconds=wait_seconds
        )
    if not replayed:
        log.info("order %s placed, total %s", order.id, Money(order.total, order.currency).format())
    return Placement(order.id, replayed)
