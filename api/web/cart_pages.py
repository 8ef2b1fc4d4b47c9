"""The cart and checkout pages: the cart's own code (api/cart_store.py) behind forms."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from activities.payment_simulator import TOK_DECLINED, TOK_FLAKY, TOK_TIMEOUT, TOK_VISA
from api.cart_store import checkout_cart, read_cart, set_line
from api.deps import ResourcesDep, TemporalClient
from api.errors import ProblemError
from api.order_headers import idempotency_key
from api.ratelimit import checkout_limiter, limit_checkout
from api.schemas.cart import CartCheckoutCreate, CartLineSet
from api.schemas.orders import MAX_QUANTITY
from api.web.csrf import require_csrf
from api.web.forms import field_errors, nested, posted
from api.web.render import render
from api.web.session import PageUser

router = APIRouter(include_in_schema=False)
forms = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

# The payment simulator's test cards, by name (see activities/payment_simulator.py).
TEST_CARDS = [
    (TOK_VISA, "Visa that works"),
    (TOK_DECLINED, "Declined card"),
    (TOK_FLAKY, "Flaky card (fails twice, then works)"),
    (TOK_TIMEOUT, "Timeout card (never answers)"),
]
ADDRESS_FIELDS = [
    ("name", "Name", True),
    ("line1", "Address line 1", True),
    ("line2", "Address line 2", False),
    ("city", "City", True),
    ("state", "State or region", False),
    ("postal_code", "Postal code", True),
    ("country", "Country", True),
]
# Why a checkout was refused, in words a customer can act on.
_REFUSALS = {
    "cart-empty": "Your cart is empty.",
    "invalid-order": "Some products in your cart cannot be ordered now. Check your cart.",
    "rate-limited": "Too many checkouts in a short time. Please wait a moment.",
    "temporal-unavailable": "We cannot take orders right now. Please try again shortly.",
    "idempotency-key-reused": "This form was already used. Please reload the page.",
    "idempotency-key": "This form was already used. Please reload the page.",
}

_LINE_REFUSALS = {
    "product-not-found": "This product is not for sale any more. You can remove it.",
    "cart-full": "Your cart is full. Check out or remove something first.",
}


def _product_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(404, "no product with this id", code="product-not-found") from None


@router.get("/shop/cart", response_class=HTMLResponse)
async def cart_page(request: Request, user: PageUser, resources: ResourcesDep) -> Response:
    cart = await read_cart(resources.sessions, user.user_id)
    return await render(request, "cart.html", user, cart=cart, error=None)


@forms.post("/shop/cart/items/{product_id}")
async def set_cart_line(
    request: Request, product_id: str, user: PageUser, resources: ResourcesDep
) -> Response:
    data = await posted(request)
    pid = _product_id(product_id)
    try:
        quantity = CartLineSet(quantity=int(data.get("quantity", "1"))).quantity
    except (ValueError, ValidationError):
        cart = await read_cart(resources.sessions, user.user_id)
        error = "Choose a quantity from 0 to 100."
        return await render(request, "cart.html", user, status_code=422, cart=cart, error=error)
    if data.get("add") and quantity > 0:
        # "Add to cart" adds to what is there already.
        current = await read_cart(resources.sessions, user.user_id)
        held = next((line.quantity for line in current.lines if line.product.id == pid), 0)
        quantity = min(held + quantity, MAX_QUANTITY)
    try:
        await set_line(resources.sessions, user.user_id, pid, quantity)
    except ProblemError as err:
        cart = await read_cart(resources.sessions, user.user_id)
        error = _LINE_REFUSALS.get(err.code or "", "The cart could not be changed.")
        return await render(
            request, "cart.html", user, status_code=err.status_code, cart=cart, error=error
        )
    return RedirectResponse("/shop/cart", status_code=303)


async def _checkout_form(
    request: Request,
    user: PageUser,
    resources: ResourcesDep,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    refusal: str | None = None,
) -> Response:
    cart = await read_cart(resources.sessions, user.user_id)
    return await render(
        request,
        "checkout.html",
        user,
        status_code=status_code,
        cart=cart,
        cards=TEST_CARDS,
        address_fields=ADDRESS_FIELDS,
        # One key per rendered form: posting it twice places one order.
        idempotency_key=str(uuid.uuid4()),
        errors=errors or {},
        refusal=refusal,
    )


@router.get("/shop/checkout", response_class=HTMLResponse)
async def checkout_page(request: Request, user: PageUser, resources: ResourcesDep) -> Response:
    return await _checkout_form(request, user, resources)


@forms.post("/shop/checkout", response_class=HTMLResponse)
async def checkout(
    request: Request, user: PageUser, resources: ResourcesDep, client: TemporalClient
) -> Response:
    data = await posted(request)
    try:
        body = CartCheckoutCreate.model_validate(
            {
                "payment": {"token": data.get("card", "")},
                "shipping_address": nested(data, "address"),
            }
        )
    except ValidationError as err:
        return await _checkout_form(
            request, user, resources, status_code=422, errors=field_errors(err)
        )
    try:
        # The same checks as the REST checkout: the key's rules and the rate limit.
        key = await idempotency_key(data.get("idempotency_key"))
        await limit_checkout(user, await checkout_limiter(request))
        placement = await checkout_cart(
            resources.sessions,
            client,
            resources.settings,
            customer=user,
            key=key,
            payment=body.payment,
            shipping_address=body.shipping_address,
        )
    except ProblemError as err:
        refusal = _REFUSALS.get(err.code or "", "The order could not be placed.")
        return await _checkout_form(
            request, user, resources, status_code=err.status_code, refusal=refusal
        )
    # The order page follows the saga live from here.
    return RedirectResponse(f"/shop/orders/{placement.order_id}", status_code=303)
