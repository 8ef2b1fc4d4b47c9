"""Money as integer minor units plus an ISO 4217 currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass

# Minor-unit exponent per currency; the ones the shop sells in.
CURRENCY_EXPONENTS: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0}


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units, e.g. cents
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; a float sneaking in is the bug this type exists to stop.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(
                "money amounts are integer minor units, not " + type(self.amount).__name__
            )
        if self.currency not in CURRENCY_EXPONENTS:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise TypeError("money is multiplied by whole quantities only")
        return Money(self.amount * quantity, self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def format(self) -> str:
        """Human text for messages, e.g. ``USD 12.50``. Display only."""
        exponent = CURRENCY_EXPONENTS[self.currency]
        if exponent == 0:
            return f"{self.currency} {self.amount}"
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        return f"{self.currency} {sign}{units}.{minor:0{exponent}d}"

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")


def total(amounts: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
