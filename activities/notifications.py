"""Customer notification activities (email, and SMS where a phone is known).

CONTRACT SKELETON: signatures are the interface the workflow codes against.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from temporalio import activity


class NotificationKind(enum.StrEnum):
    CONFIRMED = "order_confirmed"
    PAYMENT_FAILED = "payment_failed"
    REJECTED = "order_rejected"
    CANCELLED = "order_cancelled"
    SHIPPED = "order_shipped"
    DELIVERED = "order_delivered"


@dataclass
class NotifyInput:
    order_id: str
    kind: str  # a NotificationKind value


@dataclass
class NotifyResult:
    order_id: str
    kind: str
    sent: bool  # False when it had already been sent by an earlier attempt


class NotificationActivities:
    @activity.defn(name="send_notification")
    async def send(self, input: NotifyInput) -> NotifyResult:
        raise NotImplementedError
