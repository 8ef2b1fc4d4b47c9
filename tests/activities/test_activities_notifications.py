"""Notifications against the real PostgreSQL and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import INVALID_ORDER, SMS_RECIPIENT_INVALID
from activities.mailer import SmtpMailer
from activities.messages import NotificationKind, OrderFacts, render
from activities.notifications import NotificationActivities, NotifyInput
from activities.sms import LoggingSms
from activities.sms_africastalking import AfricasTalkingSms
from core.db import SessionFactory
from core.models import Notification, NotificationStatus, OrderEvent, Payment, User
from core.money import Money
from tests.support.factories import create_user
from tests.support.order_factory import create_order
from tests.support.sms_provider_stub import provider_stub

MAIL_FROM = "orders@ordersaga.test"


class Inbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def acts(sessions: SessionFactory, smtp: tuple[Inbox, int]) -> NotificationActivities:
    return NotificationActivities(
        sessions, SmtpMailer("127.0.0.1", smtp[1], MAIL_FROM), LoggingSms()
    )


async def _rows(sessions: SessionFactory, order_id: uuid.UUID) -> dict[str, NotificationStatus]:
    async with sessions() as session:
        rows = await session.execute(
            select(Notification.channel, Notification.status).where(
                Notification.order_id == order_id
            )
        )
        return {row.channel: row.status for row in rows}


async def _event_types(sessions: SessionFactory, order_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OrderEvent.type).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
        return list(rows.all())


async def test_confirmation_email_is_sent_once_with_a_stable_message_id(
    sessions: SessionFactory, smtp: tuple[Inbox, int], acts: NotificationActivities
) -> None:
    inbox, _ = smtp
    order = await create_order(sessions)
    notify = NotifyInput(str(order.id), NotificationKind.CONFIRMED.value)

    first = await ActivityEnvironment().run(acts.send, notify)
    retry = await ActivityEnvironment().run(acts.send, notify)

    assert (first.sent, retry.sent) == (True, False)
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["Subject"] == "Order confirmed"
    assert mail["From"] == MAIL_FROM
    assert mail["Message-ID"] == f"<order-{order.id}-order_confirmed@ordersaga.test>"
    assert "USD 12.50" in mail.get_content()
    assert await _rows(sessions, order.id) == {"email": NotificationStatus.SENT}
    assert await _event_types(sessions, order.id) == ["notification.sent"]


async def test_recipient_is_the_orders_customer(
    sessions: SessionFactory, smtp: tuple[Inbox, int], acts: NotificationActivities
) -> None:
    customer = await create_user(sessions, email="ada@example.com", name="Ada")
    order = await create_order(sessions, customer=customer)

    await ActivityEnvironment().run(acts.send, NotifyInput(str(order.id), "order_shipped"))

    (mail,) = smtp[0].messages
    assert mail["To"] == "ada@example.com"
    assert mail["Subject"] == "Your order has shipped"
    assert mail.get_content().startswith("Hello Ada,")


async def test_cancellation_subject_names_the_refund(
    sessions: SessionFactory, smtp: tuple[Inbox, int], acts: NotificationActivities
) -> None:
    order = await create_order(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.order_id == order.id).values(refunded_amount=1250)
        )

    await ActivityEnvironment().run(acts.send, NotifyInput(str(order.id), "order_cancelled"))

    (mail,) = smtp[0].messages
    assert mail["Subject"] == "Order cancelled — refund of USD 12.50"


async def test_sms_goes_to_a_known_phone_masked_in_the_log(
    sessions: SessionFactory,
    smtp: tuple[Inbox, int],
    acts: NotificationActivities,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ordersaga.sms")
    order = await create_order(sessions, phone="+15551234589")
    notify = NotifyInput(str(order.id), "order_delivered")

    await ActivityEnvironment().run(acts.send, notify)
    await ActivityEnvironment().run(acts.send, notify)

    sms_lines = [r.getMessage() for r in caplog.records if r.name == "ordersaga.sms"]
    assert sms_lines == ["sms to +1***89: Delivered"]
    assert "5551234589" not in caplog.text
    assert await _rows(sessions, order.id) == {
        "email": NotificationStatus.SENT,
        "sms": NotificationStatus.SENT,
    }
    assert len(smtp[0].messages) == 1


async def test_mail_server_down_is_retried_and_then_sends_exactly_once(
    sessions: SessionFactory, smtp: tuple[Inbox, int], acts: NotificationActivities
) -> None:
    order = await create_order(sessions)
    notify = NotifyInput(str(order.id), "payment_failed")
    down = NotificationActivities(
        sessions, SmtpMailer("127.0.0.1", _free_port(), MAIL_FROM), LoggingSms()
    )

    # A plain connection error (not a non-retryable ApplicationError): the
    # activity's retry policy rides it out.
    with pytest.raises(OSError):
        await ActivityEnvironment().run(down.send, notify)
    assert await _rows(sessions, order.id) == {"email": NotificationStatus.SENDING}

    result = await ActivityEnvironment().run(acts.send, notify)

    assert result.sent
    assert [m["Subject"] for m in smtp[0].messages] == ["Payment failed"]
    assert await _rows(sessions, order.id) == {"email": NotificationStatus.SENT}


async def test_unknown_kind_or_order_is_an_invalid_order(
    sessions: SessionFactory, acts: NotificationActivities
) -> None:
    order = await create_order(sessions)
    for notify in (
        NotifyInput(str(order.id), "order_teleported"),
        NotifyInput(str(uuid.uuid4()), "order_confirmed"),
    ):
        with pytest.raises(ApplicationError) as caught:
            await ActivityEnvironment().run(acts.send, notify)
        assert caught.value.type == INVALID_ORDER
        assert caught.value.non_retryable


async def _set_channels(
    sessions: SessionFactory, user_id: uuid.UUID, *, email: bool, sms: bool
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == user_id).values(notify_email=email, notify_sms=sms)
        )


async def test_each_message_goes_on_the_channels_chosen_when_it_is_sent(
    sessions: SessionFactory,
    smtp: tuple[Inbox, int],
    acts: NotificationActivities,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ordersaga.sms")
    order = await create_order(sessions, phone="+15551234589")
    await _set_channels(sessions, order.customer_id, email=False, sms=True)

    await ActivityEnvironment().run(acts.send, NotifyInput(str(order.id), "order_confirmed"))
    await _set_channels(sessions, order.customer_id, email=True, sms=False)
    await ActivityEnvironment().run(acts.send, NotifyInput(str(order.id), "order_shipped"))

    sms_lines = [r.getMessage() for r in caplog.records if r.name == "ordersaga.sms"]
    assert sms_lines == ["sms to +1***89: Order confirmed"]
    assert [m["Subject"] for m in smtp[0].messages] == ["Your order has shipped"]


async def test_the_sms_providers_message_id_is_kept_on_the_row(
    sessions: SessionFactory, smtp: tuple[Inbox, int]
) -> None:
    answer = {
        "SMSMessageData": {
            "Message": "Sent to 1/1",
            "Recipients": [{"statusCode": 101, "status": "Success", "messageId": "ATXid_7"}],
        }
    }
    order = await create_order(sessions, phone="+254711082123")
    with provider_stub((201, answer)) as stub:
        sms = AfricasTalkingSms("shop", SecretStr("key"), base_url=stub.base_url)
        acts = NotificationActivities(sessions, SmtpMailer("127.0.0.1", smtp[1], MAIL_FROM), sms)
        await ActivityEnvironment().run(acts.send, NotifyInput(str(order.id), "order_confirmed"))

    async with sessions() as session:
        rows = await session.execute(
            select(Notification.channel, Notification.provider_message_id).where(
                Notification.order_id == order.id
            )
        )
        receipts = {row.channel: row.provider_message_id for row in rows}
    assert receipts["sms"] == "ATXid_7"
    assert receipts["email"] is not None  # the relay's answer to DATA


async def test_a_number_the_provider_refuses_fails_sms_but_the_mail_still_goes(
    sessions: SessionFactory, smtp: tuple[Inbox, int]
) -> None:
    invalid = {
        "SMSMessageData": {
            "Message": "Sent to 0/1",
            "Recipients": [
                {"statusCode": 403, "status": "InvalidPhoneNumber", "messageId": "None"}
            ],
        }
    }
    order = await create_order(sessions, phone="+254700000000")
    with provider_stub((201, invalid)) as stub:
        sms = AfricasTalkingSms("shop", SecretStr("key"), base_url=stub.base_url)
        acts = NotificationActivities(sessions, SmtpMailer("127.0.0.1", smtp[1], MAIL_FROM), sms)
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(
                acts.send, NotifyInput(str(order.id), "order_confirmed")
            )

    assert raised.value.type == SMS_RECIPIENT_INVALID
    assert raised.value.non_retryable
    assert await _rows(sessions, order.id) == {
        "email": NotificationStatus.SENT,
        "sms": NotificationStatus.FAILED,
    }
    assert len(smtp[0].messages) == 1
    async with sessions() as session:
        failed = await session.scalar(
            select(OrderEvent).where(
                OrderEvent.order_id == order.id, OrderEvent.type == "notification.failed"
            )
        )
    assert failed is not None and SMS_RECIPIENT_INVALID in failed.detail


async def test_a_refused_channel_is_tried_again_by_a_later_attempt(
    sessions: SessionFactory, smtp: tuple[Inbox, int]
) -> None:
    refused = {"SMSMessageData": {"Message": "", "Recipients": [{"statusCode": 403}]}}
    accepted = {"SMSMessageData": {"Recipients": [{"statusCode": 101, "messageId": "ATXid_9"}]}}
    order = await create_order(sessions, phone="+254700000001")
    notify = NotifyInput(str(order.id), "order_confirmed")
    with provider_stub((201, refused), (201, accepted)) as stub:
        sms = AfricasTalkingSms("shop", SecretStr("key"), base_url=stub.base_url)
        acts = NotificationActivities(sessions, SmtpMailer("127.0.0.1", smtp[1], MAIL_FROM), sms)
        with pytest.raises(ApplicationError):
            await ActivityEnvironment().run(acts.send, notify)
        # The number was fixed at the provider's end, say; the next attempt sends.
        await ActivityEnvironment().run(acts.send, notify)

    assert await _rows(sessions, order.id) == {
        "email": NotificationStatus.SENT,
        "sms": NotificationStatus.SENT,
    }
    assert len(smtp[0].messages) == 1  # the mail went once
    assert len(stub.seen) == 2


class _StatusSeeingSms:
    """Refuses the first text; on each send, notes the status its row has meanwhile."""

    def __init__(self, sessions: SessionFactory, order_id: uuid.UUID) -> None:
        self.sessions, self.order_id, self.seen = sessions, order_id, list[str]()

    async def send(self, *, to: str, text: str) -> str | None:
        self.seen.append((await _rows(self.sessions, self.order_id))["sms"].value)
        if len(self.seen) == 1:
            raise ApplicationError("no", type=SMS_RECIPIENT_INVALID, non_retryable=True)
        return "id-2"


async def test_a_retried_refused_row_is_back_to_sending_while_it_is_sent(
    sessions: SessionFactory, smtp: tuple[Inbox, int]
) -> None:
    # A crash during the retry must leave "sending" (a possible send, which the
    # next attempt resends), never "failed" (which says nothing went out).
    order = await create_order(sessions, phone="+254700000002")
    sms = _StatusSeeingSms(sessions, order.id)
    acts = NotificationActivities(sessions, SmtpMailer("127.0.0.1", smtp[1], MAIL_FROM), sms)
    notify = NotifyInput(str(order.id), "order_confirmed")
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(acts.send, notify)

    await ActivityEnvironment().run(acts.send, notify)

    assert sms.seen == ["sending", "sending"]


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        (NotificationKind.CONFIRMED, "Order confirmed"),
        (NotificationKind.PAYMENT_FAILED, "Payment failed"),
        (NotificationKind.REJECTED, "Order rejected"),
        (NotificationKind.CANCELLED, "Order cancelled"),
        (NotificationKind.SHIPPED, "Your order has shipped"),
        (NotificationKind.DELIVERED, "Delivered"),
    ],
)
def test_every_kind_has_a_message(kind: NotificationKind, subject: str) -> None:
    facts = OrderFacts(
        order_id=str(uuid.uuid4()),
        customer_name="Ada",
        total=Money(1250, "USD"),
        refunded=Money(0, "USD"),
    )
    message = render(kind, facts)
    assert message.subject == subject
    assert "Total: USD 12.50" in message.body
