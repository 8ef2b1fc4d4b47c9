"""Pricing an order's lines from the catalog as it is now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Product
from core.money import Money
from core.ordering.errors import (
    InvalidOrder,
    LineProblem,
    MixedCurrencies,
    ProductNotForSale,
    UnknownProduct,
)
from core.ordering.request import OrderLine


@dataclass(frozen=True)
class PricedLine:
    product: Product
    quantity: int

    @property
    def unit_price(self) -> Money:
        return Money(self.product.price, self.product.currency)


async def price_lines(session: AsyncSession, lines: Sequence[OrderLine]) -> list[PricedLine]:
    """The lines priced from the catalog, or ``InvalidOrder`` naming every problem."""
    ids = [line.product_id for line in lines]
    products = {
        p.id: p for p in (await session.scalars(select(Product).where(Product.id.in_(ids))))
    }
    problems: list[LineProblem] = []
    priced: list[PricedLine] = []
    for index, line in enumerate(lines):
        product = products.get(line.product_id)
        if product is None:
            problems.append(UnknownProduct(index))
        elif not product.active:
            problems.append(ProductNotForSale(index))
        else:
            priced.append(PricedLine(product, line.quantity))
    # Only the lines that could be priced have a currency to compare.
    currencies = tuple(sorted({line.product.currency for line in priced}))
    if len(currencies) > 1:
        problems.append(MixedCurrencies(currencies))
    if problems:
        raise InvalidOrder(problems)
    return priced
