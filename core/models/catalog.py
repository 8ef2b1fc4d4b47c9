"""Products and their stock, with a ledger of every stock movement.

``products.stock`` is what can still be reserved. Each change to it is also
written to ``stock_movements`` so an audit can prove that
initial + restocks = current + held + sold.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, Timestamps, new_id


class Product(Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(100), index=True)
    # Minor units (cents) of `currency`; never a float.
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)


class MovementKind(enum.StrEnum):
    INITIAL = "initial"  # stock the product was created with
    RESTOCK = "restock"  # admin raised or lowered stock (delta may be negative)
    RESERVE = "reserve"  # held for an order (negative)
    RELEASE = "release"  # a hold given back (positive)


class StockMovement(Base):
    __tablename__ = "stock_movements"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), index=True)
    kind: Mapped[MovementKind] = mapped_column(
        Enum(MovementKind, name="movement_kind", values_callable=lambda e: [m.value for m in e])
    )
    delta: Mapped[int]
    order_id: Mapped[uuid.UUID | None]
    at: Mapped[datetime] = mapped_column(server_default=func.now())
