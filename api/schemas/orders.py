"""Order schemas: OrderCreate, OrderPublic, OrderList, TimelinePublic, CancelBody, ShipBody.

Write bodies refuse unknown fields, so a client can never send a price, a
total, a status or a customer: those are decided by the server from the
catalog and the saga. Quantities are strict integers (``"2"`` or ``2.0`` is
refused, not converted).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from api.schemas.text import (
    NO_NUL,
    NOT_BLANK,
    TWO_NOT_BLANK,
    Stripped,
    Text100,
    Text200,
    plain_text,
    raw_at_most,
)
from core.models.payments import PaymentStatus

MAX_LINES = 50
MAX_QUANTITY = 100


AddressLine = Text200
ShortText = Text100
Reason = Annotated[
    str,
    StringConstraints(max_length=500, pattern=NO_NUL),
    AfterValidator(plain_text),
    Stripped,
    raw_at_most(500),
]

_WRITE = ConfigDict(extra="forbid")


class OrderLineCreate(BaseModel):
    model_config = _WRITE

    product_id: uuid.UUID
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]


class PaymentCreate(BaseModel):
    model_config = _WRITE

    # The provider's payment-method token (e.g. "tok_visa"), never a card number.
    token: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_\-]+$")
    ]


class ShippingAddress(BaseModel):
    model_config = _WRITE

    name: AddressLine
    line1: AddressLine
    line2: AddressLine | None = None
    city: ShortText
    state: ShortText | None = None
    postal_code: Annotated[
        str,
        StringConstraints(min_length=1, max_length=20, pattern=NOT_BLANK),
        AfterValidator(plain_text),
        Stripped,
        raw_at_most(20),
    ]
    country: Annotated[
        str,
        StringConstraints(min_length=2, max_length=56, pattern=TWO_NOT_BLANK),
        AfterValidator(plain_text),
        Stripped,
        raw_at_most(56),
    ]


class OrderCreate(BaseModel):
    """A checkout request. Prices and the total are computed by the server."""

    model_config = _WRITE

    items: Annotated[list[OrderLineCreate], Field(min_length=1, max_length=MAX_LINES)]
    payment: PaymentCreate
    shipping_address: ShippingAddress

    @field_validator("items")
    @classmethod
    def _one_line_per_product(cls, items: list[OrderLineCreate]) -> list[OrderLineCreate]:
        # Two lines for one product would need two reservations of the same
        # row; asking the client to add the quantities keeps one line each.
        seen: set[uuid.UUID] = set()
        for line in items:
            if line.product_id in seen:
                raise ValueError("a product appears on more than one line")
            seen.add(line.product_id)
        return items


class OrderItemPublic(BaseModel):
    product_id: uuid.UUID
    sku: str
    name: str
    quantity: int
    unit_price: int = Field(description="minor units of currency, copied at checkout")


class PaymentPublic(BaseModel):
    status: PaymentStatus
    amount: int
    refunded_amount: int


class OrderPublic(BaseModel):
    id: uuid.UUID
    status: str
    items: list[OrderItemPublic]
    total: int = Field(description="minor units of currency")
    currency: str
    shipping_address: dict[str, str | None]
    payment: PaymentPublic | None
    failure_reason: str | None
    needs_attention: bool
    cancel_reason: str | None
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    items: list[OrderPublic]
    total: int = Field(description="how many orders match, across all pages")


class TimelineEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    type: str
    detail: str


class TimelinePublic(BaseModel):
    events: list[TimelineEventPublic]


class CancelBody(BaseModel):
    model_config = _WRITE

    reason: Reason | None = None


class ShipBody(BaseModel):
    model_config = _WRITE

    carrier: ShortText | None = None
    tracking_number: ShortText | None = None
