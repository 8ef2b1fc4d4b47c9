"""Orders as the API writes them before starting the saga, for activity tests.

The API inserts the order (pending), its lines and a pending payment row in
one transaction; activities read them by order id. This builds the same rows.
"""

from __future__ import annotations

import uuid

from core.db import SessionFactory
from core.models import Order, OrderItem, Payment, Product, User
from tests.support.factories import create_product, create_user

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


async def create_order(
    sessions: SessionFactory,
    *,
    lines: list[tuple[Product, int]] | None = None,
    customer: User | None = None,
    token: str = "tok_visa",
    phone: str | None = None,
) -> Order:
    """A pending order with its items and pending payment; products made when not given."""
    if customer is None:
        customer = await create_user(sessions)
    if phone is not None:
        async with sessions() as session, session.begin():
            user = await session.get_one(User, customer.id)
            # A phone given here is one the customer wants texts on.
            user.phone, user.notify_sms = phone, True
    if lines is None:
        lines = [(await create_product(sessions, price=1250, stock=10), 1)]
    currency = lines[0][0].currency
    order_total = sum(product.price * quantity for product, quantity in lines)
    order = Order(
        customer_id=customer.id,
        currency=currency,
        total=order_total,
        shipping_address=ADDRESS,
        idempotency_key=str(uuid.uuid4()),
        request_fingerprint="0" * 64,
        items=[
            OrderItem(
                product_id=product.id,
                position=position,
                sku=product.sku,
                name=product.name,
                quantity=quantity,
                unit_price=product.price,
            )
            for position, (product, quantity) in enumerate(lines)
        ],
    )
    async with sessions() as session, session.begin():
        session.add(order)
        await session.flush()
        session.add(
            Payment(
                order_id=order.id,
                provider="simulator",
                token=token,
                amount=order_total,
                currency=currency,
            )
        )
    return order
