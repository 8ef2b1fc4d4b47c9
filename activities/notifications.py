"""Customer notification activities (email, and SMS where a phone is known).

At most once per (order, kind, channel): each channel's row in
``notifications`` is claimed (status ``sending``) before the message goes out
and marked ``sent`` after. A retry that finds it sent does nothing. A crash
between sending and marking leaves it ``sending`` and the retry sends once
more; email carries a deterministic Message-ID so that copy can be dropped
downstream. That is the narrowest window possible without the mail server
taking part in our transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from activities import fault_points
from activities.errors import invalid_order, parse_order_id
from activities.mailer import Mailer
from activities.messages import Line, Message, NotificationKind, OrderFacts, render
from activities.sms import SmsSender
from activities.timeline import add_event
from core.db import SessionFactory
from core.models import Notification, NotificationStatus, Order, Payment, User
from core.money import Money

__all__ = ["NotificationActivities", "NotificationKind", "NotifyInput", "NotifyResult"]

EMAIL = "email"
SMS = "sms"


@dataclass
class NotifyInput:
    order_id: str
    kind: str  # a NotificationKind value


@dataclass
class NotifyResult:
    order_id: str
    kind: str
    sent: bool  # False when it had already been sent by an earlier attempt


@dataclass(frozen=True)
class _Recipient:
    channel: str
    address: str


class NotificationActivities:
    def __init__(self, sessions: SessionFactory, mailer: Mailer, sms: SmsSender) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._sms = sms

    @activity.defn(name="send_notification")
    async def send(self, input: NotifyInput) -> NotifyResult:
        order_id = parse_order_id(input.order_id)
        try:
            kind = NotificationKind(input.kind)
        except ValueError:
            raise invalid_order(f"unknown notification kind {input.kind!r}") from None
        facts, recipients = await self._load(order_id)
        message = render(kind, facts)
        sent = False
        for recipient in recipients:
            if await self._claim(order_id, kind, recipient, message):
                await fault_points.reached("send_notification:before")
                await self._deliver(order_id, kind, recipient, message)
                await self._mark_sent(order_id, kind, recipient)
                await fault_points.reached("send_notification:after")
                sent = True
        # Written on every attempt (deduped), so a crash after the last
        # channel was marked sent still ends with the timeline line.
        channels = " and ".join(r.channel for r in recipients)
        async with self._sessions() as session, session.begin():
            await add_event(
                session,
                order_id,
                "notification.sent",
                f"{message.subject} (by {channels})",
                dedupe_key=f"notification.sent:{kind.value}",
            )
        return NotifyResult(input.order_id, kind.value, sent)

    async def _load(self, order_id: uuid.UUID) -> tuple[OrderFacts, list[_Recipient]]:
        async with self._sessions() as session:
            order = await session.get(Order, order_id)
            if order is None:
                raise invalid_order(f"order {order_id} does not exist")
            user = await session.get_one(User, order.customer_id)
            refunded = await session.scalar(
                select(Payment.refunded_amount).where(Payment.order_id == order_id)
            )
        facts = OrderFacts(
            order_id=str(order.id),
            customer_name=user.name,
            total=Money(order.total, order.currency),
            refunded=Money(refunded or 0, order.currency),
            lines=[
                Line(item.name, item.quantity, Money(item.unit_price, order.currency))
                for item in order.items
            ],
            failure_reason=order.failure_reason,
            carrier=order.carrier,
            tracking_number=order.tracking_number,
        )
        recipients = [_Recipient(EMAIL, user.email)]
        if user.phone:
            recipients.append(_Recipient(SMS, user.phone))
        return facts, recipients

    async def _claim(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        recipient: _Recipient,
        message: Message,
    ) -> bool:
        """Claim the (order, kind, channel) row; False when it was already sent."""
        stmt = (
            insert(Notification)
            .values(
                order_id=order_id,
                kind=kind.value,
                channel=recipient.channel,
                recipient=recipient.address,
                subject=message.subject,
                body=message.body,
                status=NotificationStatus.SENDING,
            )
            .on_conflict_do_nothing(index_elements=["order_id", "kind", "channel"])
        )
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
            status = await session.scalar(
                select(Notification.status).where(
                    Notification.order_id == order_id,
                    Notification.kind == kind.value,
                    Notification.channel == recipient.channel,
                )
            )
        return status is not NotificationStatus.SENT

    async def _deliver(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        recipient: _Recipient,
        message: Message,
    ) -> None:
        if recipient.channel == EMAIL:
            await self._mailer.send(
                to=recipient.address,
                subject=message.subject,
                body=message.body,
                message_key=f"order-{order_id}-{kind.value}",
            )
        else:
            # SMS is short: the subject says it all.
            await self._sms.send(to=recipient.address, text=message.subject)

    async def _mark_sent(
        self, order_id: uuid.UUID, kind: NotificationKind, recipient: _Recipient
    ) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Notification)
                .where(
                    Notification.order_id == order_id,
                    Notification.kind == kind.value,
                    Notification.channel == recipient.channel,
                )
                .values(status=NotificationStatus.SENT, sent_at=func.now())
            )
