"""Payments: our record per order, and the built-in provider simulator's own books.

``payments`` is ordersaga's view of an order's money. The ``simulator_*``
tables belong to the payment simulator, which stands where a real provider
would be; an audit compares the two.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # not charged yet
    CAPTURED = "captured"
    DECLINED = "declined"
    FAILED = "failed"  # the provider never answered in time; nothing kept
    REFUNDED = "refunded"
    VOIDED = "voided"  # compensation ran before any capture
    # The order ended (rejected, cancelled) before any charge was attempted.
    NOT_CHARGED = "not_charged"


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("refunded_amount <= amount", name="refund_within_amount"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    # The provider's payment-method token. It is a reference, not a card
    # number, but it is still never logged, returned or sent to Temporal, and
    # it is cleared once the charge has settled.
    token: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[PaymentStatus] = mapped_column(
        Enum(PaymentStatus, name="payment_status", values_callable=lambda e: [m.value for m in e]),
        default=PaymentStatus.PENDING,
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    charge_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SimulatorCharge(Base):
    __tablename__ = "simulator_charges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # "captured" or "declined"; a declined charge is remembered so the same
    # key answers the same way.
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SimulatorRefund(Base):
    __tablename__ = "simulator_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("simulator_charges.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SimulatorAttempt(Base):
    """How many times a charge key has failed transiently (drives ``tok_flaky``)."""

    __tablename__ = "simulator_attempts"

    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    transient_failures: Mapped[int] = mapped_column(default=0)


class SimulatorSwitch(Base):
    """Named switches of the simulator, such as a provider-wide outage."""

    __tablename__ = "simulator_switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
