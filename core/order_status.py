"""An order's status: a plain enum, shared by the read model, the API and the saga.

Plain (no SQLAlchemy) so the workflow can import it without the ORM: the
workflow sandbox passes it through as a module of constants.
"""

from __future__ import annotations

import enum


class OrderStatus(enum.StrEnum):
    PENDING = "pending"  # the saga is running
    CONFIRMED = "confirmed"  # stock held and payment captured: the pivot
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REJECTED = "rejected"  # out of stock or a product went away; nothing charged
    PAYMENT_FAILED = "payment_failed"  # declined or deadline passed; stock released
    CANCELLED = "cancelled"  # by owner or admin before shipping; refunded, released

    @property
    def settled(self) -> bool:
        return self is not OrderStatus.PENDING
