"""The server-side cart: its lines, and checking it out through the one checkout code.

The REST routes (api/cart.py) and the shop pages (api/web/) both call these
functions, so a cart rule is stated once. Ordering rules are not stated here
at all: a checkout turns the cart into an ``OrderCreate`` and hands it to
``api.checkout.place_order``, exactly as ``POST /orders`` does.

When is a cart emptied? The saga confirms an order asynchronously, so
success is not known when the checkout request returns. A checkout first
records a ``CartCheckout`` (the order's key and request fingerprint), then
places the order. Every later read of the cart settles those records first,
in the same transaction as the read: an order that is (or was) confirmed
removes what it ordered from the cart; one that failed (declined card, out of
stock) leaves the cart as it was. So the customer never sees a cart that
contradicts their orders, and a failed order never costs them their cart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.checkout import fingerprint, place_order
from api.errors import ProblemError
from api.order_reads import Placement
from api.schemas.orders import MAX_LINES, OrderCreate, PaymentCreate, ShippingAddress
from api.tokens import Principal
from core.db import SessionFactory
from core.models import (
    CartCheckout,
    CartItem,
    Order,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
)
from core.money import Money
from core.settings import Settings

EMPTIED = "emptied"
KEPT = "kept"
# An order in one of these states went through its pivot: what it holds was bought.
_BOUGHT = {OrderStatus.CONFIRMED, OrderStatus.SHIPPED, OrderStatus.DELIVERED}
# A cancelled order was bought first if its payment was ever captured.
_CHARGED = {PaymentStatus.CAPTURED, PaymentStatus.REFUNDED}


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int
    price_seen: Money

    @property
    def available(self) -> bool:
        """False once the product was withdrawn from sale."""
        return self.product.active

    @property
    def unit_price(self) -> Money:
        return Money(self.product.price, self.product.currency)

    @property
    def price_changed(self) -> bool:
        return self.price_seen != self.unit_price

    @property
    def line_total(self) -> Money:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Cart:
    lines: list[CartLine]

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def total(self) -> Money | None:
        """The total of the lines for sale, or None when they mix currencies."""
        buyable = [line for line in self.lines if line.available]
        currencies = {line.unit_price.currency for line in buyable}
        if len(currencies) > 1:
            return None
        currency = currencies.pop() if currencies else "USD"
        amount = Money.zero(currency)
        for line in buyable:
            amount = amount + line.line_total
        return amount


def _product_not_found() -> ProblemError:
    # The same answer as GET /products/{id} gives a customer for a withdrawn one.
    return ProblemError(404, "no product with this id", code="product-not-found")


async def _lines(session: AsyncSession, user_id: uuid.UUID) -> Cart:
    rows = await session.execute(
        select(CartItem, Product)
        .join(Product, Product.id == CartItem.product_id)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.created_at, Product.name, Product.id)
    )
    return Cart(
        [
            CartLine(product, item.quantity, Money(item.price_seen, item.currency_seen))
            for item, product in rows
        ]
    )


def _bought(order: Order, payment: Payment | None) -> bool:
    if order.status in _BOUGHT:
        return True
    return (
        order.status is OrderStatus.CANCELLED and payment is not None and payment.status in _CHARGED
    )


async def _remove_ordered(session: AsyncSession, user_id: uuid.UUID, order_id: uuid.UUID) -> None:
    ordered = await session.execute(
        select(OrderItem.product_id, OrderItem.quantity).where(OrderItem.order_id == order_id)
    )
    for product_id, quantity in ordered:
        line = await session.get(CartItem, (user_id, product_id), with_for_update=True)
        if line is None:
            continue
        if line.quantity <= quantity:
            await session.delete(line)
        else:
            # Added again since the checkout: only what was ordered goes.
            line.quantity -= quantity


async def settle_checkouts(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Apply every settled order of this user's cart checkouts to the cart (inside a transaction).

    The records are locked, so two concurrent reads cannot both remove the
    same order's lines.
    """
    rows = await session.execute(
        select(CartCheckout, Order, Payment)
        .outerjoin(
            Order,
            (Order.customer_id == CartCheckout.user_id)
            & (Order.idempotency_key == CartCheckout.idempotency_key),
        )
        .outerjoin(Payment, Payment.order_id == Order.id)
        .where(CartCheckout.user_id == user_id, CartCheckout.outcome.is_(None))
        .with_for_update(of=CartCheckout)
    )
    for record, order, payment in rows:
        if order is None:
            continue  # not placed (yet): a retry with its key may still place it
        if order.request_fingerprint != record.request_fingerprint:
            record.outcome = KEPT  # that key's order came from another request
        elif order.status is OrderStatus.PENDING:
            continue
        elif _bought(order, payment):
            await _remove_ordered(session, user_id, order.id)
            record.outcome = EMPTIED
        else:
            record.outcome = KEPT


async def read_cart(sessions: SessionFactory, user_id: uuid.UUID) -> Cart:
    async with sessions() as session, session.begin():
        await settle_checkouts(session, user_id)
        return await _lines(session, user_id)


async def set_line(
    sessions: SessionFactory, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
) -> Cart:
    """Set a line's quantity (0 removes it). Stock is not checked here: checkout does."""
    async with sessions() as session, session.begin():
        await settle_checkouts(session, user_id)
        if quantity == 0:
            await session.execute(
                delete(CartItem).where(
                    CartItem.user_id == user_id, CartItem.product_id == product_id
                )
            )
            return await _lines(session, user_id)
        product = await session.get(Product, product_id)
        if product is None or not product.active:
            raise _product_not_found()
        others = await session.scalar(
            select(func.count())
            .select_from(CartItem)
            .where(CartItem.user_id == user_id, CartItem.product_id != product_id)
        )
        if (others or 0) >= MAX_LINES:
            # An order holds at most MAX_LINES lines, so a cart holds no more.
            raise ProblemError(422, f"a cart holds at most {MAX_LINES} products", code="cart-full")
        values = {
            "quantity": quantity,
            "price_seen": product.price,
            "currency_seen": product.currency,
        }
        # An upsert: two tabs adding the same product cannot clash on the key.
        await session.execute(
            insert(CartItem)
            .values(user_id=user_id, product_id=product_id, **values)
            .on_conflict_do_update(
                index_elements=[CartItem.user_id, CartItem.product_id],
                set_={**values, "updated_at": func.now()},
            )
        )
        return await _lines(session, user_id)


async def clear_cart(sessions: SessionFactory, user_id: uuid.UUID) -> None:
    async with sessions() as session, session.begin():
        await settle_checkouts(session, user_id)
        await session.execute(delete(CartItem).where(CartItem.user_id == user_id))


async def _checkout_body(
    session: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    payment: PaymentCreate,
    shipping_address: ShippingAddress,
) -> OrderCreate:
    """The order body of this checkout, recorded (with its fingerprint) before it is placed."""
    record = await session.get(CartCheckout, (user_id, key), with_for_update=True)
    placed = await session.scalar(
        select(Order.id).where(Order.customer_id == user_id, Order.idempotency_key == key)
    )
    if record is not None and placed is not None:
        # A retry: the same lines as the first try, even if the cart was emptied since.
        items = record.items
    else:
        cart = await _lines(session, user_id)
        if not cart.lines:
            # The cart's state, not the request, is what is wrong: a conflict.
            raise ProblemError(409, "the cart is empty", code="cart-empty")
        items = [
            {"product_id": str(line.product.id), "quantity": line.quantity} for line in cart.lines
        ]
    body = OrderCreate(
        items=items,  # validated from plain dicts
        payment=payment,
        shipping_address=shipping_address,
    )
    if record is None:
        session.add(
            CartCheckout(
                user_id=user_id,
                idempotency_key=key,
                request_fingerprint=fingerprint(body),
                items=items,
            )
        )
    elif placed is None:
        # The earlier try placed nothing (refused, or cut short): this one counts.
        record.items, record.request_fingerprint, record.outcome = items, fingerprint(body), None
    return body


async def checkout_cart(
    sessions: SessionFactory,
    client: Client,
    settings: Settings,
    *,
    customer: Principal,
    key: str,
    payment: PaymentCreate,
    shipping_address: ShippingAddress,
    wait_seconds: float = 0,
) -> Placement:
    """Place an order for the cart's lines through ``place_order``, as POST /orders does."""
    user_id = customer.user_id
    async with sessions() as session, session.begin():
        await settle_checkouts(session, user_id)
        body = await _checkout_body(session, user_id, key, payment, shipping_address)
    return await place_order(
        sessions,
        client,
        settings,
        customer=customer,
        key=key,
        body=body,
        wait_seconds=wait_seconds,
    )
