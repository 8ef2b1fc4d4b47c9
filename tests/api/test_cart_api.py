"""The cart over REST: lines at current prices, repricing and withdrawal shown, limits.

Checkout and the cart's fate after it are in tests/api/test_cart_checkout.py
(real worker and Temporal).
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import update

from api.cart_store import read_cart, set_line
from core.db import SessionFactory
from core.models import CartCheckout, Order, OrderStatus, Payment, PaymentStatus, Product
from core.settings import Settings
from tests.support import order_factory
from tests.support.factories import auth_header, create_product, create_user


async def _headers(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions))


async def test_an_empty_cart_has_no_lines(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    response = await api.get("/cart", headers=await _headers(settings, sessions))
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "currency": "USD"}


async def test_put_sets_lines_and_the_total_is_in_minor_units(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = await _headers(settings, sessions)
    book = await create_product(sessions, price=1250)
    pen = await create_product(sessions, price=199)

    assert (
        await api.put(f"/cart/items/{book.id}", json={"quantity": 2}, headers=headers)
    ).status_code == 200
    response = await api.put(f"/cart/items/{pen.id}", json={"quantity": 3}, headers=headers)
    assert response.status_code == 200
    cart = response.json()
    assert [
        (line["product_id"], line["quantity"], line["line_total"]) for line in cart["items"]
    ] == [
        (str(book.id), 2, 2500),
        (str(pen.id), 3, 597),
    ]
    assert (cart["total"], cart["currency"]) == (3097, "USD")

    # Setting again replaces the quantity; 0 removes the line.
    await api.put(f"/cart/items/{book.id}", json={"quantity": 1}, headers=headers)
    await api.put(f"/cart/items/{pen.id}", json={"quantity": 0}, headers=headers)
    cart = (await api.get("/cart", headers=headers)).json()
    assert [(line["product_id"], line["quantity"]) for line in cart["items"]] == [(str(book.id), 1)]
    assert cart["total"] == 1250


async def test_stock_is_not_checked_when_adding(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = await _headers(settings, sessions)
    rare = await create_product(sessions, stock=0)
    response = await api.put(f"/cart/items/{rare.id}", json={"quantity": 5}, headers=headers)
    assert response.status_code == 200
    assert response.json()["items"][0]["quantity"] == 5


async def test_a_repriced_or_withdrawn_product_is_shown_as_such(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = await _headers(settings, sessions)
    repriced = await create_product(sessions, price=1000)
    withdrawn = await create_product(sessions, price=500)
    for product in (repriced, withdrawn):
        await api.put(f"/cart/items/{product.id}", json={"quantity": 1}, headers=headers)

    async with sessions() as session, session.begin():
        await session.execute(update(Product).where(Product.id == repriced.id).values(price=1200))
        await session.execute(
            update(Product).where(Product.id == withdrawn.id).values(active=False)
        )

    lines = {
        line["product_id"]: line
        for line in (await api.get("/cart", headers=headers)).json()["items"]
    }
    assert (lines[str(repriced.id)]["unit_price"], lines[str(repriced.id)]["price_when_added"]) == (
        1200,
        1000,
    )
    assert lines[str(repriced.id)]["price_changed"] is True
    assert lines[str(repriced.id)]["available"] is True
    assert lines[str(withdrawn.id)]["available"] is False
    # The total counts what can still be bought, at today's price.
    assert (await api.get("/cart", headers=headers)).json()["total"] == 1200

    # A withdrawn product cannot be added again, but its line can be removed.
    again = await api.put(f"/cart/items/{withdrawn.id}", json={"quantity": 2}, headers=headers)
    assert again.status_code == 404
    assert again.json()["type"] == "product-not-found"
    gone = await api.put(f"/cart/items/{withdrawn.id}", json={"quantity": 0}, headers=headers)
    assert [line["product_id"] for line in gone.json()["items"]] == [str(repriced.id)]


async def test_unknown_products_and_bad_quantities_are_refused(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = await _headers(settings, sessions)
    product = await create_product(sessions)
    missing = await api.put(f"/cart/items/{uuid.uuid4()}", json={"quantity": 1}, headers=headers)
    assert missing.status_code == 404
    for body in (
        {"quantity": -1},
        {"quantity": 101},
        {"quantity": "2"},
        {"quantity": 1, "price": 1},
    ):
        refused = await api.put(f"/cart/items/{product.id}", json=body, headers=headers)
        assert refused.status_code == 422, body
        assert refused.json()["type"] == "validation-error"


async def test_delete_empties_the_cart_and_carts_are_per_user(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    mine, theirs = await _headers(settings, sessions), await _headers(settings, sessions)
    product = await create_product(sessions)
    await api.put(f"/cart/items/{product.id}", json={"quantity": 1}, headers=mine)
    await api.put(f"/cart/items/{product.id}", json={"quantity": 4}, headers=theirs)

    assert (await api.delete("/cart", headers=mine)).status_code == 204
    assert (await api.get("/cart", headers=mine)).json()["items"] == []
    assert (await api.get("/cart", headers=theirs)).json()["items"][0]["quantity"] == 4


async def test_the_cart_needs_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/cart")).status_code == 401
    assert (await api.delete("/cart")).status_code == 401


async def _cart_order(
    sessions: SessionFactory, quantity_in_cart: int, ordered: int
) -> tuple[uuid.UUID, Product, Order]:
    """A user whose cart holds a product, and a cart checkout of ``ordered`` of it."""
    user = await create_user(sessions)
    product = await create_product(sessions)
    order = await order_factory.create_order(sessions, customer=user, lines=[(product, ordered)])
    await set_line(sessions, user.id, product.id, quantity_in_cart)
    async with sessions() as session, session.begin():
        session.add(
            CartCheckout(
                user_id=user.id,
                idempotency_key=order.idempotency_key,
                request_fingerprint=order.request_fingerprint,
                items=[{"product_id": str(product.id), "quantity": ordered}],
            )
        )
    return user.id, product, order


async def _settle(
    sessions: SessionFactory,
    order: Order,
    status: OrderStatus,
    payment: PaymentStatus = PaymentStatus.PENDING,
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order.id).values(status=status))
        await session.execute(
            update(Payment).where(Payment.order_id == order.id).values(status=payment)
        )


async def _quantity(sessions: SessionFactory, user_id: uuid.UUID) -> int:
    return (await read_cart(sessions, user_id)).count


async def test_the_cart_waits_while_its_order_is_pending(sessions: SessionFactory) -> None:
    user_id, _, _ = await _cart_order(sessions, quantity_in_cart=5, ordered=2)
    assert await _quantity(sessions, user_id) == 5


async def test_an_order_cancelled_after_capture_was_bought_one_cancelled_before_was_not(
    sessions: SessionFactory,
) -> None:
    paid, _, paid_order = await _cart_order(sessions, quantity_in_cart=5, ordered=2)
    await _settle(sessions, paid_order, OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    assert await _quantity(sessions, paid) == 3

    unpaid, _, unpaid_order = await _cart_order(sessions, quantity_in_cart=5, ordered=2)
    await _settle(sessions, unpaid_order, OrderStatus.CANCELLED, PaymentStatus.VOIDED)
    assert await _quantity(sessions, unpaid) == 5


async def test_an_order_from_another_request_with_the_same_key_leaves_the_cart(
    sessions: SessionFactory,
) -> None:
    user_id, _, order = await _cart_order(sessions, quantity_in_cart=5, ordered=2)
    async with sessions() as session, session.begin():
        await session.execute(
            update(CartCheckout)
            .where(CartCheckout.user_id == user_id)
            .values(request_fingerprint="f" * 64)
        )
    await _settle(sessions, order, OrderStatus.CONFIRMED, PaymentStatus.CAPTURED)
    assert await _quantity(sessions, user_id) == 5


async def test_a_confirmed_order_is_taken_out_once_under_concurrent_reads(
    sessions: SessionFactory,
) -> None:
    user_id, _, order = await _cart_order(sessions, quantity_in_cart=9, ordered=2)
    await _settle(sessions, order, OrderStatus.CONFIRMED, PaymentStatus.CAPTURED)
    counts = await asyncio.gather(*(_quantity(sessions, user_id) for _ in range(4)))
    assert counts == [7, 7, 7, 7]
    assert await _quantity(sessions, user_id) == 7
