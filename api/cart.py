"""The caller's cart over REST: read it, set a line, empty it, check it out.

The rules live in api/cart_store.py; checkout places the order through the
same ``place_order`` as ``POST /orders`` and answers in the same way.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from api.cart_store import Cart, checkout_cart, clear_cart, read_cart, set_line
from api.deps import CurrentUser, ResourcesDep, TemporalClient
from api.errors import problem_responses
from api.order_headers import IDEMPOTENCY_KEY_PARAMETER, IdempotencyKey, PreferWait
from api.order_reads import placed_order_answer
from api.ratelimit import CheckoutRateLimit
from api.schemas.cart import CartCheckoutCreate, CartLinePublic, CartLineSet, CartPublic
from api.schemas.orders import OrderPublic

router = APIRouter(prefix="/cart", tags=["cart"])


def cart_public(cart: Cart) -> CartPublic:
    total = cart.total
    return CartPublic(
        items=[
            CartLinePublic(
                product_id=line.product.id,
                sku=line.product.sku,
                name=line.product.name,
                quantity=line.quantity,
                unit_price=line.unit_price.amount,
                currency=line.unit_price.currency,
                line_total=line.line_total.amount,
                price_when_added=line.price_seen.amount,
                price_changed=line.price_changed,
                available=line.available,
            )
            for line in cart.lines
        ],
        total=None if total is None else total.amount,
        currency=None if total is None else total.currency,
    )


@router.get("", responses=problem_responses(401))
async def get_cart(principal: CurrentUser, resources: ResourcesDep) -> CartPublic:
    """The caller's cart: each line at the current price, and the total."""
    return cart_public(await read_cart(resources.sessions, principal.user_id))


@router.put("/items/{product_id}", responses=problem_responses(401, 404, 413, 422))
async def put_cart_item(
    product_id: uuid.UUID, body: CartLineSet, principal: CurrentUser, resources: ResourcesDep
) -> CartPublic:
    """Set a line's quantity; 0 removes it. Stock is checked at checkout, not here."""
    cart = await set_line(resources.sessions, principal.user_id, product_id, body.quantity)
    return cart_public(cart)


@router.delete("", status_code=204, responses=problem_responses(401))
async def empty_cart(principal: CurrentUser, resources: ResourcesDep) -> Response:
    """Empty the cart."""
    await clear_cart(resources.sessions, principal.user_id)
    return Response(status_code=204)


@router.post(
    "/checkout",
    status_code=202,
    response_model=OrderPublic,
    responses={
        200: {"description": "settled within the Prefer: wait time", "model": OrderPublic},
        **problem_responses(400, 401, 409, 413, 422, 429, 503),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
async def checkout(
    principal: CurrentUser,
    _rate: CheckoutRateLimit,
    key: IdempotencyKey,
    wait: PreferWait,
    client: TemporalClient,
    resources: ResourcesDep,
    body: CartCheckoutCreate,
    response: Response,
) -> OrderPublic:
    """Order the cart's lines as POST /orders would (409 if the cart is empty).

    The cart is emptied of what was ordered once the order is confirmed.
    """
    placement = await checkout_cart(
        resources.sessions,
        client,
        resources.settings,
        customer=principal,
        key=key,
        payment=body.payment,
        shipping_address=body.shipping_address,
        wait_seconds=wait or 0,
    )
    return await placed_order_answer(resources.sessions, placement, wait, response)
