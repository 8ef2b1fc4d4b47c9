"""The server-side cart: one per user, and a record of each checkout made from it.

A cart line remembers the price it was added at (``price_seen``), so the cart
can show a product that was repriced while it sat there. Prices charged
always come from the catalog at checkout, never from here.

A ``CartCheckout`` names the order a cart checkout placed by the order's own
unique key (customer, Idempotency-Key) and the request's fingerprint. It is
written before the order, so no crash can leave an order from the cart that
the cart does not know about; the cart is emptied of what was ordered once
that order is (or was) confirmed; see api/cart_store.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int]
    # The catalog price when the line was last set: display only.
    price_seen: Mapped[int] = mapped_column(BigInteger)
    currency_seen: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class CartCheckout(Base):
    __tablename__ = "cart_checkouts"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # The lines as checked out, so a retry with the same key sends the same
    # order body even after the cart was emptied.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # None while its order is pending; "emptied" or "kept" once settled.
    outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
