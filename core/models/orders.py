"""The orders read model: orders, their lines, stock holds and the timeline.

The workflow is the source of truth for an order's progress; activities keep
these rows current so the API can list and show orders without asking
Temporal.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.models.base import Base, Timestamps, new_id

# Re-exported: the status is plain kernel code (the saga imports it without
# the ORM); the model and ``core.models`` keep offering it.
from core.order_status import OrderStatus

__all__ = ["Order", "OrderEvent", "OrderItem", "OrderStatus", "Reservation", "ReservationStatus"]


def _pg_enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Order(Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (
        # One order per (customer, Idempotency-Key): a retried POST finds it.
        UniqueConstraint("customer_id", "idempotency_key"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        Index("ix_orders_customer_created", "customer_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    status: Mapped[OrderStatus] = mapped_column(
        _pg_enum(OrderStatus, "order_status"), default=OrderStatus.PENDING, index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the canonical request body: the same key with another body is a 409.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Set when a compensation keeps failing: a person must look at this order.
    needs_attention: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    carrier: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))

    items: Mapped[list[OrderItem]] = relationship(
        lazy="selectin", order_by="OrderItem.position", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), primary_key=True)
    position: Mapped[int]
    # sku, name and unit_price are copied at checkout: later catalog edits
    # must not change what the customer bought or paid.
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger)


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"
    COMMITTED = "committed"  # the goods left the warehouse (shipped)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        # A retried reserve activity finds its own rows instead of holding twice.
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    status: Mapped[ReservationStatus] = mapped_column(
        _pg_enum(ReservationStatus, "reservation_status"), default=ReservationStatus.HELD
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class OrderEvent(Base):
    """One line of an order's timeline."""

    __tablename__ = "order_events"
    __table_args__ = (
        # Activities pass a key per logical event, so a retry does not repeat it.
        UniqueConstraint("order_id", "dedupe_key"),
        Index("ix_order_events_order_id_id", "order_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    type: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
