"""Product schemas: ProductCreate, ProductUpdate, ProductPublic, ProductList.

Money is integer minor units with an ISO 4217 code. Prices and stock are
*strict* integers: JSON ``19.99`` or ``"1999"`` is refused rather than
rounded or parsed, because a client that sends a float has misunderstood the
unit and silently converting it would charge the wrong amount.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from api.schemas.text import NO_NUL, Text100, Text200, plain_text
from core.money import CURRENCY_EXPONENTS

# Bounds keep every accepted value storable: price is BIGINT, stock INTEGER.
MAX_PRICE = 100_000_000_000  # a billion major units; far above any real product
MAX_STOCK = 1_000_000_000


def supported_currency(value: str) -> str:
    # The message lists what is accepted, never what was sent.
    if value not in CURRENCY_EXPONENTS:
        raise ValueError(f"must be one of {', '.join(sorted(CURRENCY_EXPONENTS))}")
    return value


Sku = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
    Field(description="stock keeping unit: letters, digits, '.', '_' or '-'"),
]
Name = Text200
Category = Text100
Description = Annotated[
    str, StringConstraints(max_length=5000, pattern=NO_NUL), AfterValidator(plain_text)
]
Price = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_PRICE,
        description="minor units of currency, e.g. cents; a JSON integer (1999.0 is refused)",
    ),
]
Stock = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_STOCK,
        description="units that can still be ordered; a JSON integer",
    ),
]
Currency = Annotated[
    str,
    AfterValidator(supported_currency),
    Field(
        description="ISO 4217 code",
        json_schema_extra={"enum": sorted(CURRENCY_EXPONENTS)},
    ),
]
# Strict: 0, 1 or "yes" are not booleans; a client sending them has a bug.
Active = Annotated[bool, Field(strict=True)]

_WRITE = ConfigDict(extra="forbid")


class ProductCreate(BaseModel):
    """A new product. Unknown fields are refused."""

    model_config = _WRITE

    sku: Sku
    name: Name
    description: Description = ""
    category: Category
    price: Price
    currency: Currency
    stock: Stock = 0
    active: Active = True


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    # In Python an unset field is None; on the wire null is refused (see
    # _not_null), so the document shows each field as its plain type.
    for prop in schema.get("properties", {}).values():
        variants = prop.pop("anyOf", None)
        if variants is not None:
            prop.update(next(v for v in variants if v.get("type") != "null"))
        prop.pop("default", None)


class ProductUpdate(BaseModel):
    """A partial change. Only the fields sent are changed; sku and currency are fixed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_is_not_null)

    name: Name | None = None
    description: Description | None = None
    category: Category | None = None
    price: Price | None = None
    stock: Stock | None = None
    active: Active | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Absent means "leave as is"; an explicit null would mean "erase",
        # which no product field allows.
        if value is None:
            raise ValueError("must not be null; leave the field out to keep it")
        return value


class ProductPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    name: str
    description: str
    category: str
    price: int = Field(description="minor units of currency, e.g. cents")
    currency: str
    stock: int
    active: bool
    image_url: str | None = Field(
        default=None,
        description="where its picture is served (GET /products/{id}/image); null without one",
    )


class ProductList(BaseModel):
    items: list[ProductPublic]
    total: int = Field(description="how many products match, across all pages")
