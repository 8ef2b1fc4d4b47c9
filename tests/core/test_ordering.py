"""Placing an order in the kernel (core/ordering): plain values in, rows out, typed refusals.

No HTTP and no Temporal: these call the domain code directly against the
real PostgreSQL of the ``sessions`` fixture. tests/api/test_orders_api.py checks
how the API renders the same refusals.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.db import SessionFactory
from core.models import Order, OrderEvent, OrderStatus, Payment, PaymentStatus, Product, User
from core.ordering import (
    Address,
    IdempotencyConflict,
    InvalidOrder,
    MixedCurrencies,
    OrderLine,
    OrderRequest,
    Placed,
    ProductNotForSale,
    UnknownProduct,
    place,
)
from tests.support.factories import create_product, create_user

ADDRESS = Address(name="Ada", line1="1 Main St", city="Springfield", postal_code="1", country="US")


def request(*lines: tuple[Product | uuid.UUID, int], token: str = "tok_visa") -> OrderRequest:
    return OrderRequest(
        lines=[OrderLine(p.id if isinstance(p, Product) else p, quantity) for p, quantity in lines],
        address=ADDRESS,
        payment_token=token,
    )


@pytest.fixture
async def customer(sessions: SessionFactory) -> User:
    return await create_user(sessions)


async def _place(
    sessions: SessionFactory,
    customer: User,
    order: OrderRequest,
    *,
    key: str = "key-1",
    request_fingerprint: str = "f" * 64,
) -> Placed:
    async with sessions() as session:
        return await place(
            session,
            customer_id=customer.id,
            key=key,
            request_fingerprint=request_fingerprint,
            request=order,
            provider="simulator",
        )


async def _count(sessions: SessionFactory, model: type[object]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_places_a_pending_order_with_its_lines_payment_and_first_event(
    sessions: SessionFactory, customer: User
) -> None:
    shirt = await create_product(sessions, price=1999)
    mug = await create_product(sessions, price=500)

    placed = await _place(sessions, customer, request((shirt, 2), (mug, 1), token="tok_ok"))

    assert placed.replayed is False
    async with sessions() as session:
        order = await session.scalar(
            select(Order).where(Order.id == placed.order.id).options(selectinload(Order.items))
        )
        assert order is not None
        payment = await session.scalar(select(Payment).where(Payment.order_id == order.id))
        events = list(await session.scalars(select(OrderEvent.type)))
    assert order.status is OrderStatus.PENDING
    assert order.customer_id == customer.id
    assert (order.total, order.currency) == (2 * 1999 + 500, "USD")
    assert order.idempotency_key == "key-1"
    assert [(i.product_id, i.quantity, i.unit_price, i.position) for i in order.items] == [
        (shirt.id, 2, 1999, 0),
        (mug.id, 1, 500, 1),
    ]
    # An absent optional field of the address is no key at all.
    assert order.shipping_address == {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Springfield",
        "postal_code": "1",
        "country": "US",
    }
    assert payment is not None
    assert (payment.status, payment.amount, payment.token) == (
        PaymentStatus.PENDING,
        order.total,
        "tok_ok",
    )
    assert events == ["order.placed"]
    # What place() hands back (the API answers a 202 with it) is what was stored.
    assert placed.payment is not None
    assert (placed.order.created_at, placed.order.updated_at) == (
        order.created_at,
        order.updated_at,
    )
    assert [(i.sku, i.quantity) for i in placed.order.items] == [
        (i.sku, i.quantity) for i in order.items
    ]
    assert (placed.payment.status, placed.payment.amount, placed.payment.created_at) == (
        payment.status,
        payment.amount,
        payment.created_at,
    )


async def test_the_same_key_and_fingerprint_finds_the_first_order(
    sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions)
    first = await _place(sessions, customer, request((product, 1)))
    again = await _place(sessions, customer, request((product, 1)))
    assert again.replayed is True
    assert again.order.id == first.order.id
    assert await _count(sessions, Order) == 1
    assert await _count(sessions, Payment) == 1


async def test_the_same_key_with_another_fingerprint_is_an_idempotency_conflict(
    sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions)
    await _place(sessions, customer, request((product, 1)), request_fingerprint="a" * 64)
    with pytest.raises(IdempotencyConflict):
        await _place(sessions, customer, request((product, 2)), request_fingerprint="b" * 64)
    assert await _count(sessions, Order) == 1


async def test_keys_belong_to_one_customer(sessions: SessionFactory, customer: User) -> None:
    other = await create_user(sessions)
    product = await create_product(sessions)
    mine = await _place(sessions, customer, request((product, 1)))
    theirs = await _place(sessions, other, request((product, 1)))
    assert theirs.replayed is False
    assert theirs.order.id != mine.order.id


async def test_concurrent_placements_with_one_key_make_one_order(
    sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions)
    placed = await asyncio.gather(
        *(_place(sessions, customer, request((product, 1))) for _ in range(5))
    )
    assert len({p.order.id for p in placed}) == 1
    assert sum(not p.replayed for p in placed) == 1
    assert await _count(sessions, Order) == 1


async def test_an_unknown_product_is_refused_by_its_line(
    sessions: SessionFactory, customer: User
) -> None:
    product = await create_product(sessions)
    with pytest.raises(InvalidOrder) as refused:
        await _place(sessions, customer, request((product, 1), (uuid.uuid4(), 1)))
    assert refused.value.problems == (UnknownProduct(1),)
    assert await _count(sessions, Order) == 0


async def test_a_product_not_for_sale_is_refused_by_its_line(
    sessions: SessionFactory, customer: User
) -> None:
    gone = await create_product(sessions, active=False)
    with pytest.raises(InvalidOrder) as refused:
        await _place(sessions, customer, request((gone, 1)))
    assert refused.value.problems == (ProductNotForSale(0),)
    assert await _count(sessions, Order) == 0


async def test_mixed_currencies_are_refused_with_the_catalogs_currencies(
    sessions: SessionFactory, customer: User
) -> None:
    dollars = await create_product(sessions, currency="USD")
    euros = await create_product(sessions, currency="EUR")
    with pytest.raises(InvalidOrder) as refused:
        await _place(sessions, customer, request((dollars, 1), (euros, 1)))
    assert refused.value.problems == (MixedCurrencies(("EUR", "USD")),)
    assert await _count(sessions, Order) == 0


async def test_every_problem_is_reported_at_once_lines_first(
    sessions: SessionFactory, customer: User
) -> None:
    dollars = await create_product(sessions, currency="USD")
    gone = await create_product(sessions, active=False)
    euros = await create_product(sessions, currency="EUR")
    order = request((dollars, 1), (gone, 1), (uuid.uuid4(), 1), (euros, 1))
    with pytest.raises(InvalidOrder) as refused:
        await _place(sessions, customer, order)
    assert refused.value.problems == (
        ProductNotForSale(1),
        UnknownProduct(2),
        MixedCurrencies(("EUR", "USD")),
    )


async def test_a_refusal_carries_no_submitted_text(
    sessions: SessionFactory, customer: User
) -> None:
    secret = "tok_secret_" + uuid.uuid4().hex
    with pytest.raises(InvalidOrder) as refused:
        await _place(sessions, customer, request((uuid.uuid4(), 1), token=secret))
    assert secret not in repr(refused.value) and secret not in str(refused.value)
    assert secret not in repr(refused.value.problems)
