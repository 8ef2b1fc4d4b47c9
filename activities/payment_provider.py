"""The payment provider interface. The simulator and any real provider implement it.

Every call that moves money carries an idempotency key, as real providers
(Stripe, Adyen) require: the same key returns the first result, so a retried
activity can never charge or refund twice. Error messages never contain the
card token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PaymentError(Exception):
    """Base of provider errors."""


class CardDeclined(PaymentError):
    """A business refusal: retrying will not help."""


class ProviderUnavailable(PaymentError):
    """Transient: the provider failed or did not answer; retry with the same key."""


class IdempotencyConflict(PaymentError):
    """The same idempotency key was used with different parameters."""


class InvalidRequest(PaymentError):
    """The request can never succeed (unknown charge, refund above what was captured)."""


@dataclass(frozen=True)
class Charge:
    id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Refund:
    id: str
    charge_id: str
    amount: int


class PaymentProvider(Protocol):
    name: str

    async def charge(
        self, *, token: str, amount: int, currency: str, idempotency_key: str
    ) -> Charge: ...

    async def refund(self, *, charge_id: str, amount: int, idempotency_key: str) -> Refund: ...

    async def find_charge(self, idempotency_key: str) -> Charge | None:
        """The capture made under this key, if any (used to void safely)."""
        ...
