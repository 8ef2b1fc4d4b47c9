"""Checking the cart out, end to end: the real worker, Temporal dev server and PostgreSQL.

The cart is emptied of what was ordered once the order is confirmed, and
left as it was when the order fails (see api/cart_store.py for why this is
settled when the cart is next read).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from core.db import SessionFactory
from core.models import Product
from tests.support.e2e import ADDRESS, Stack, count_orders, stock_of
from tests.support.factories import auth_header, create_product, create_user

WAIT = 30


@pytest.fixture
async def headers(stack: Stack, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(stack.settings, await create_user(sessions))


def _body(token: str = "tok_visa") -> dict[str, Any]:
    return {"payment": {"token": token}, "shipping_address": dict(ADDRESS)}


async def _checkout(
    stack: Stack, headers: dict[str, str], token: str = "tok_visa", key: str | None = None
) -> Any:
    return await stack.api.post(
        "/cart/checkout",
        json=_body(token),
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4()), "Prefer": f"wait={WAIT}"},
    )


async def _lines(stack: Stack, headers: dict[str, str]) -> list[tuple[str, int]]:
    cart = (await stack.api.get("/cart", headers=headers)).json()
    return [(line["product_id"], line["quantity"]) for line in cart["items"]]


async def test_a_confirmed_order_empties_the_cart_of_what_it_ordered(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    book = await create_product(sessions, price=1250, stock=5)
    pen = await create_product(sessions, price=199, stock=5)
    await stack.api.put(f"/cart/items/{book.id}", json={"quantity": 2}, headers=headers)
    await stack.api.put(f"/cart/items/{pen.id}", json={"quantity": 1}, headers=headers)

    placed = await _checkout(stack, headers)

    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "confirmed"
    assert order["total"] == 2 * 1250 + 199
    assert placed.headers["Location"] == f"/orders/{order['id']}"
    assert await stock_of(sessions, book.id) == 3
    assert await _lines(stack, headers) == []


async def test_lines_added_after_the_checkout_stay(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    book = await create_product(sessions, stock=5)
    await stack.api.put(f"/cart/items/{book.id}", json={"quantity": 1}, headers=headers)
    key = str(uuid.uuid4())
    # No wait: the order is still pending while the cart changes.
    placed = await stack.api.post(
        "/cart/checkout", json=_body(), headers={**headers, "Idempotency-Key": key}
    )
    assert placed.status_code == 202, placed.text
    await stack.api.put(f"/cart/items/{book.id}", json={"quantity": 3}, headers=headers)

    settled = await stack.api.get(f"/orders/{placed.json()['id']}", headers=headers)
    # The replay with the same key and Prefer: wait returns the same order once settled.
    replay = await _checkout(stack, headers, key=key)
    assert replay.json()["id"] == settled.json()["id"]
    assert replay.json()["status"] == "confirmed"
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await _lines(stack, headers) == [(str(book.id), 2)]


async def test_a_declined_card_leaves_the_cart_as_it_was(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    book = await create_product(sessions, stock=5)
    await stack.api.put(f"/cart/items/{book.id}", json={"quantity": 2}, headers=headers)

    placed = await _checkout(stack, headers, token="tok_chargeDeclined")

    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "payment_failed"
    assert await _lines(stack, headers) == [(str(book.id), 2)]
    assert await stock_of(sessions, book.id) == 5


async def test_out_of_stock_is_found_at_checkout_and_keeps_the_cart(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    scarce = await create_product(sessions, stock=1)
    await stack.api.put(f"/cart/items/{scarce.id}", json={"quantity": 3}, headers=headers)

    placed = await _checkout(stack, headers)

    assert placed.json()["status"] == "rejected"
    assert await _lines(stack, headers) == [(str(scarce.id), 3)]


async def test_a_retry_after_the_cart_was_emptied_returns_the_same_order(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    book = await create_product(sessions, stock=5)
    await stack.api.put(f"/cart/items/{book.id}", json={"quantity": 1}, headers=headers)
    key = str(uuid.uuid4())
    first = await _checkout(stack, headers, key=key)
    assert first.json()["status"] == "confirmed"
    assert await _lines(stack, headers) == []

    again = await _checkout(stack, headers, key=key)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await count_orders(sessions) == 1
    assert await stock_of(sessions, book.id) == 4


async def test_refusals_come_from_the_order_rules_and_keep_the_cart(
    stack: Stack, sessions: SessionFactory, headers: dict[str, str]
) -> None:
    empty = await _checkout(stack, headers)
    assert empty.status_code == 409
    assert empty.json()["type"] == "cart-empty"

    withdrawn = await create_product(sessions)
    await stack.api.put(f"/cart/items/{withdrawn.id}", json={"quantity": 1}, headers=headers)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Product).where(Product.id == withdrawn.id).values(active=False)
        )
    refused = await _checkout(stack, headers)
    # The same refusal POST /orders gives for a product that is not for sale.
    assert refused.status_code == 422
    assert refused.json()["type"] == "invalid-order"
    assert await _lines(stack, headers) == [(str(withdrawn.id), 1)]
    assert await count_orders(sessions) == 0

    missing_key = await stack.api.post("/cart/checkout", json=_body(), headers=headers)
    assert missing_key.status_code == 400
