"""Notifications sent to customers, one row per (order, kind, channel)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class NotificationStatus(enum.StrEnum):
    SENDING = "sending"  # claimed by an attempt; a crash here may resend once
    SENT = "sent"
    # The channel refused it for good (a wrong SMTP password, an invalid
    # number): ``failure`` names the error type; never sent.
    FAILED = "failed"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("order_id", "kind", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[NotificationStatus] = mapped_column(
        Enum(
            NotificationStatus,
            name="notification_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=NotificationStatus.SENDING,
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    # What the provider called it: Twilio's SM... sid, Africa's Talking's
    # ATXid_..., the SMTP relay's answer to DATA (its queue id).
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    failure: Mapped[str | None] = mapped_column(String(64))
