"""Why an order cannot be placed: business refusals, each carrying facts, never input.

A refusal names *where* the request is wrong (a line's index) and what the
catalog says (the currencies it found), never the text the customer sent,
so whoever renders it to a client cannot echo a submitted value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OrderingError(Exception):
    """An order the domain refuses to place; retrying the same request cannot help."""


@dataclass(frozen=True)
class UnknownProduct:
    """Line ``line`` (0-based) names no product of the catalog."""

    line: int


@dataclass(frozen=True)
class ProductNotForSale:
    """Line ``line`` (0-based) names a product that is no longer sold."""

    line: int


@dataclass(frozen=True)
class MixedCurrencies:
    """The order's products are priced in more than one currency (sorted)."""

    currencies: tuple[str, ...]


LineProblem = UnknownProduct | ProductNotForSale | MixedCurrencies


class InvalidOrder(OrderingError):
    """The catalog refuses the order's lines.

    Every problem found is reported at once, lines in their order then the
    order as a whole, so a client can fix its request in one go.
    """

    def __init__(self, problems: Sequence[LineProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s) with the order's lines")


class IdempotencyConflict(OrderingError):
    """The idempotency key already placed an order, from a request with another body."""

    def __init__(self) -> None:
        super().__init__("the idempotency key was used with a different request")
