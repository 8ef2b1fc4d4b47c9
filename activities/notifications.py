"""Customer notification activities (email, and SMS where the customer asked for it).

At least once, and identical, per (order, kind, channel): each channel's row
in ``notifications`` is claimed (status ``sending``) before the message goes
out and marked ``sent`` right after the provider accepts it. A retry that
finds it sent does nothing. A crash in between (after the provider's accept,
before the mark) leaves it ``sending`` and the retry sends once more, the same
text under the same Message-ID, so mail clients collapse the copies; no SMS
provider takes an idempotency key, so an SMS resend reaches the phone twice.
No relay can deduplicate a send whose outcome was lost: that window is
narrowed to one UPDATE by primary key and counted by the audit as a resend.

The channels are the customer's preferences (``notify_email``,
``notify_sms``) as they are when the activity runs, so each message goes
where the customer wanted it at that moment. A channel that refuses for good
(non-retryable, activities/errors.NOTIFICATION_REFUSALS) is marked ``failed``
with the reason; the other channels are still tried, then the activity fails
non-retryably and the saga records ``notification.failed``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import fault_points
from activities.errors import NOTIFICATION_REFUSALS, invalid_order, parse_order_id
from activities.mailer import Mailer
from activities.messages import Line, Message, NotificationKind, OrderFacts, render
from activities.sms import SmsSender
from activities.timeline import add_event
from core.db import SessionFactory, autocommit
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
        refused: list[tuple[_Recipient, ApplicationError]] = []
        for recipient in recipients:
            if await self._claim(order_id, kind, recipient, message):
                await fault_points.reached("send_notification:before")
                try:
                    receipt = await self._deliver(order_id, kind, recipient, message)
                except ApplicationError as err:
                    if err.type not in NOTIFICATION_REFUSALS:
                        raise
                    await self._mark_failed(order_id, kind, recipient, err.type)
                    refused.append((recipient, err))
                    continue
                # Between the provider's accept and the mark: a crash here is
                # the one resend this design allows (the crash suite kills here).
                await fault_points.reached("send_notification:accepted")
                await self._mark_sent(order_id, kind, recipient, receipt)
                await fault_points.reached("send_notification:after")
                sent = True
        if refused:
            await self._record_refusal(order_id, kind, refused)
            # The first refusal's type, so the saga, the metric and the
            # operator see the cause (MailAuthenticationFailed, ...).
            first = refused[0][1]
            raise ApplicationError(first.message, type=first.type, non_retryable=True)
        if not recipients:
            return NotifyResult(input.order_id, kind.value, sent)
        # Written on every attempt (deduped), so a crash after the last
        # channel was marked sent still ends with the timeline line.
        channels = " and ".join(r.channel for r in recipients)
        async with autocommit(self._sessions) as session:
            await add_event(
                session,
                order_id,
                "notification.sent",
                f"{message.subject} (by {channels})",
                dedupe_key=f"notification.sent:{kind.value}",
            )
        return NotifyResult(input.order_id, kind.value, sent)

    async def _load(self, order_id: uuid.UUID) -> tuple[OrderFacts, list[_Recipient]]:
        # The order, its customer and what was refunded in one query (the
        # lines follow in one more).
        async with autocommit(self._sessions) as session:
            row = (
                await session.execute(
                    select(Order, User, Payment.refunded_amount)
                    .join(User, User.id == Order.customer_id)
                    .outerjoin(Payment, Payment.order_id == Order.id)
                    .where(Order.id == order_id)
                )
            ).one_or_none()
            if row is None:
                raise invalid_order(f"order {order_id} does not exist")
            order, user, refunded = row
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
        # The preferences as they are now: this is the moment the message goes.
        recipients = []
        if user.notify_email:
            recipients.append(_Recipient(EMAIL, user.email))
        if user.notify_sms and user.phone:
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
            # A row a channel refused is tried again (its failure may have
            # been fixed) and back to sending meanwhile, so a crash during
            # that try is counted as what it may be: a send.
            .on_conflict_do_update(
                index_elements=["order_id", "kind", "channel"],
                set_={"status": NotificationStatus.SENDING, "failure": None},
                where=Notification.status == NotificationStatus.FAILED,
            )
        )
        # One statement in the common case (a new row, or a refused one
        # taken again, returns itself); only a row that was already there
        # is read to see whether it went out.
        async with autocommit(self._sessions) as session:
            if await session.scalar(stmt.returning(Notification.status)) is not None:
                return True
            status = await session.scalar(
                select(Notification.status).where(*_row(order_id, kind, recipient))
            )
        return status is not NotificationStatus.SENT

    async def _deliver(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        recipient: _Recipient,
        message: Message,
    ) -> str | None:
        if recipient.channel == EMAIL:
            return await self._mailer.send(
                to=recipient.address,
                subject=message.subject,
                body=message.body,
                message_key=message_key(order_id, kind),
            )
        # SMS is short: the subject says it all.
        return await self._sms.send(to=recipient.address, text=message.subject)

    async def _mark_sent(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        recipient: _Recipient,
        receipt: str | None,
    ) -> None:
        # One UPDATE by the unique key, committing itself (no BEGIN or
        # COMMIT round trips): the shorter this is, the fewer sends a crash
        # can repeat (tests/resend_window.py measures it).
        async with autocommit(self._sessions) as session:
            await session.execute(
                update(Notification)
                .where(*_row(order_id, kind, recipient))
                .values(
                    status=NotificationStatus.SENT,
                    sent_at=func.now(),
                    provider_message_id=receipt,
                    failure=None,
                )
            )

    async def _mark_failed(
        self, order_id: uuid.UUID, kind: NotificationKind, recipient: _Recipient, reason: str
    ) -> None:
        async with autocommit(self._sessions) as session:
            await session.execute(
                update(Notification)
                .where(*_row(order_id, kind, recipient))
                .values(status=NotificationStatus.FAILED, failure=reason)
            )

    async def _record_refusal(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        refused: list[tuple[_Recipient, ApplicationError]],
    ) -> None:
        """The timeline line naming why; the saga's own line for it is then a no-op.

        The dedupe key is the one the workflow's ``notification.failed`` line
        uses (``<type>:<detail>``, the detail being the kind), so the order's
        timeline shows one line, and it names the cause.
        """
        causes = ", ".join(f"{r.channel}: {err.type}" for r, err in refused)
        async with autocommit(self._sessions) as session:
            await add_event(
                session,
                order_id,
                "notification.failed",
                f"{kind.value} not sent ({causes})",
                dedupe_key=f"notification.failed:{kind.value}",
            )


def message_key(order_id: uuid.UUID, kind: NotificationKind) -> str:
    """The stable key of one logical message: its Message-ID is ``<key@domain>``."""
    return f"order-{order_id}-{kind.value}"


def _row(order_id: uuid.UUID, kind: NotificationKind, recipient: _Recipient) -> list[Any]:
    return [
        Notification.order_id == order_id,
        Notification.kind == kind.value,
        Notification.channel == recipient.channel,
    ]
