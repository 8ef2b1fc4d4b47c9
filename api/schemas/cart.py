"""Cart schemas: CartLineSet, CartCheckoutCreate, CartLinePublic, CartPublic.

Money is integer minor units with its currency. A line shows the current
catalog price; ``price_when_added`` and ``price_changed`` show a repricing,
``available: false`` a product withdrawn while it sat in the cart.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.orders import MAX_QUANTITY, PaymentCreate, ShippingAddress

_WRITE = ConfigDict(extra="forbid")


class CartLineSet(BaseModel):
    model_config = _WRITE

    quantity: Annotated[
        int, Field(strict=True, ge=0, le=MAX_QUANTITY, description="0 removes the line")
    ]


class CartCheckoutCreate(BaseModel):
    """Check the cart out: the lines come from the cart, prices from the catalog."""

    model_config = _WRITE

    payment: PaymentCreate
    shipping_address: ShippingAddress


class CartLinePublic(BaseModel):
    product_id: uuid.UUID
    sku: str
    name: str
    quantity: int
    unit_price: int = Field(description="the current catalog price, minor units of currency")
    currency: str
    line_total: int = Field(description="unit_price × quantity, minor units")
    price_when_added: int = Field(description="the price when the line was last set")
    price_changed: bool
    available: bool = Field(description="false once the product is withdrawn from sale")


class CartPublic(BaseModel):
    items: list[CartLinePublic]
    total: int | None = Field(
        description="minor units, over the lines for sale; null if they mix currencies"
    )
    currency: str | None
