"""What a customer asks for when placing an order, as plain values."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class OrderLine:
    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, kw_only=True)
class Address:
    """The shipping address, already validated as text by whoever took it in."""

    name: str
    line1: str
    line2: str | None = None
    city: str
    state: str | None = None
    postal_code: str
    country: str

    def as_json(self) -> dict[str, str]:
        """The stored form: the fields that are set (an absent line2 is no key, not null)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class OrderRequest:
    """One order: its lines (one per product), where it goes and how it is paid."""

    lines: Sequence[OrderLine]
    address: Address
    # The payment provider's payment-method token; stored on the payment
    # record only, until the charge clears it.
    payment_token: str
