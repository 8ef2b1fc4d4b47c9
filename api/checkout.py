"""Placing an order from a request: the HTTP side of checkout.

The domain does the placing (``core/ordering``: pricing, idempotency, the
rows) from plain values; this module turns the request body into those
values, its refusals into the problems the API has always answered, and
starts the order's saga (``api/saga_start.py``) once the rows are committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import assert_never

from temporalio.client import Client

from api.errors import ProblemError
from api.order_reads import OrderRecord, Placement
from api.saga_start import start_saga
from api.schemas.orders import OrderCreate
from api.tokens import Principal
from core.db import SessionFactory, autocommit
from core.models import OrderStatus
from core.money import Money
from core.ordering import (
    Address,
    IdempotencyConflict,
    InvalidOrder,
    LineProblem,
    MixedCurrencies,
    OrderLine,
    OrderRequest,
    ProductNotForSale,
    UnknownProduct,
    place,
)
from core.settings import Settings

log = logging.getLogger(__name__)


def fingerprint(body: OrderCreate) -> str:
    """SHA-256 of the canonical body: key order and whitespace do not matter."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def order_request(body: OrderCreate) -> OrderRequest:
    """The validated body as the domain's plain values."""
    address = body.shipping_address
    return OrderRequest(
        lines=[OrderLine(line.product_id, line.quantity) for line in body.items],
        address=Address(
            name=address.name,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            state=address.state,
            postal_code=address.postal_code,
            country=address.country,
        ),
        payment_token=body.payment.token,
    )


def _field_problem(problem: LineProblem) -> dict[str, str]:
    """One entry of a 422's ``errors``: the body field, its type, fixed text."""
    match problem:
        case UnknownProduct(line=line):
            field, kind, message = f"items[{line}].product_id", "unknown_product", "unknown product"
        case ProductNotForSale(line=line):
            field, kind = f"items[{line}].product_id", "product_not_for_sale"
            message = "product is not for sale"
        case MixedCurrencies(currencies=currencies):
            # The currencies are the catalog's, not anything the client sent.
            field, kind = "items", "mixed_currencies"
            message = "all products of one order must share a currency; found " + ", ".join(
                currencies
            )
        case _:
            assert_never(problem)
    return {"field": field, "in": "body", "type": kind, "message": message}


def invalid_order_problem(err: InvalidOrder) -> ProblemError:
    """The 422 for lines the catalog refuses, naming each failing field."""
    errors = [_field_problem(problem) for problem in err.problems]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return ProblemError(
        422, f"invalid order: {names}", code="invalid-order", extra={"errors": errors}
    )


def _key_reused() -> ProblemError:
    return ProblemError(
        409,
        "this Idempotency-Key was already used with a different request body",
        code="idempotency-key-reused",
    )


async def place_order(
    sessions: SessionFactory,
    client: Client,
    settings: Settings,
    *,
    customer: Principal,
    key: str,
    body: OrderCreate,
    wait_seconds: float = 0,
) -> Placement:
    """Place the order of this request, or find the one an earlier try with its key placed.

    ``wait_seconds`` (from ``Prefer: wait``) lets a new or still-pending order
    wait that long for its saga's outcome before this returns.
    """
    # One session, so one pooled connection, for every read and the write.
    # In autocommit: the write is one statement, atomic on its own, and the
    # reads before it need no snapshot of their own (prices can change
    # between reading and writing either way), so BEGIN and COMMIT would be
    # two round trips for nothing. The customer's email (the saga's
    # summary) came with the token check.
    async with autocommit(sessions) as session:
        try:
            placed = await place(
                session,
                customer_id=customer.user_id,
                key=key,
                request_fingerprint=fingerprint(body),
                request=order_request(body),
                provider=settings.payment_provider,
            )
        except InvalidOrder as err:
            raise invalid_order_problem(err) from None
        except IdempotencyConflict:
            raise _key_reused() from None
        order = placed.order
        # A settled order's saga certainly started; a pending one may be the
        # leftover of a request that wrote its rows but failed to start it.
        start = not placed.replayed or order.status is OrderStatus.PENDING
    if start:
        await start_saga(client, settings, order, customer.email, wait_seconds=wait_seconds)
    if not placed.replayed:
        log.info("order %s placed, total %s", order.id, Money(order.total, order.currency).format())
    written = None if placed.payment is None else OrderRecord(order, placed.payment)
    return Placement(order.id, placed.replayed, written)
