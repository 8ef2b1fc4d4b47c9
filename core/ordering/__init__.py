"""Placing an order, as domain code: pricing, idempotency and the order's rows.

Plain values in (``request.OrderRequest``), rows out, typed refusals
(``errors``) that carry facts (a line's index, the currencies found) and never
the submitted text. Nothing here knows HTTP or Temporal: the API maps the
refusals to problems and starts the saga (``api/checkout.py``); the bench's
one-transaction ceiling writes the same rows (``tooling/bench/floor.py``).
"""

from core.ordering.errors import (
    IdempotencyConflict,
    InvalidOrder,
    LineProblem,
    MixedCurrencies,
    OrderingError,
    ProductNotForSale,
    UnknownProduct,
)
from core.ordering.placement import NewOrder, Placed, add_order, find_order, place
from core.ordering.pricing import PricedLine, price_lines
from core.ordering.request import Address, OrderLine, OrderRequest

__all__ = [
    "Address",
    "IdempotencyConflict",
    "InvalidOrder",
    "LineProblem",
    "MixedCurrencies",
    "NewOrder",
    "OrderLine",
    "OrderRequest",
    "OrderingError",
    "Placed",
    "PricedLine",
    "ProductNotForSale",
    "UnknownProduct",
    "add_order",
    "find_order",
    "place",
    "price_lines",
]
