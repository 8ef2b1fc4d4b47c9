"""SmtpMailer against a real relay (aiosmtpd) that requires TLS and AUTH, with a test CA."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError

from activities import mailer as mailer_module
from activities.errors import (
    MAIL_AUTHENTICATION_FAILED,
    MAIL_CERTIFICATE_REJECTED,
    MAIL_TLS_UNAVAILABLE,
)
from activities.mailer import SmtpMailer, SmtpSecurity
from tests.support.smtp_relay import (
    IMPLICIT_TLS_WARNING,
    PASSWORD,
    USERNAME,
    RelayInbox,
    smtp_relay,
)
from tests.support.tls_support import Pki, make_pki

MAIL_FROM = "orders@shop.test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second CA, which never signed the relay's certificate."""
    return make_pki(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture
def relay(pki: Pki) -> Iterator[tuple[RelayInbox, int]]:
    with smtp_relay(pki) as running:
        yield running


def _mailer(
    port: int,
    ca_file: Path,
    *,
    password: str = PASSWORD,
    security: SmtpSecurity = SmtpSecurity.STARTTLS,
    host: str = "127.0.0.1",
) -> SmtpMailer:
    return SmtpMailer(
        host,
        port,
        MAIL_FROM,
        security=security,
        username=USERNAME,
        password=SecretStr(password),
        ca_file=ca_file,
        timeout_seconds=5.0,
    )


async def _send(mailer: SmtpMailer) -> str | None:
    return await mailer.send(
        to="ada@example.test", subject="Order confirmed", body="Thanks", message_key="order-1-c"
    )


async def test_starttls_and_login_deliver_with_the_message_id_intact(
    relay: tuple[RelayInbox, int], pki: Pki
) -> None:
    inbox, port = relay

    receipt = await _send(_mailer(port, pki.ca_file))

    assert inbox.logins == [USERNAME]
    [message] = inbox.messages
    assert message["Message-ID"] == "<order-1-c@shop.test>"
    assert message["To"] == "ada@example.test"
    assert receipt is not None and "Q1" in receipt  # the relay's queue id is kept


async def test_messages_share_one_kept_alive_connection(
    relay: tuple[RelayInbox, int], pki: Pki
) -> None:
    inbox, port = relay
    mailer = _mailer(port, pki.ca_file)

    receipts = [
        await mailer.send(to="ada@example.test", subject="s", body="b", message_key=f"order-{i}-c")
        for i in range(3)
    ]

    # One connect, STARTTLS and login for three messages, each with its own receipt.
    assert inbox.auth_attempts == 1
    assert [m["Message-ID"] for m in inbox.messages] == [
        f"<order-{i}-c@shop.test>" for i in range(3)
    ]
    assert len(set(receipts)) == 3
    await asyncio.to_thread(mailer.close)


async def test_a_connection_the_relay_dropped_is_replaced_before_anything_is_sent(
    pki: Pki,
) -> None:
    with smtp_relay(pki, idle_timeout=0.3) as (inbox, port):
        mailer = _mailer(port, pki.ca_file)
        await _send(mailer)
        # The relay's own idle timer hangs up on the kept connection meanwhile.
        await asyncio.sleep(1.0)

        await mailer.send(to="bob@example.test", subject="s", body="b", message_key="order-2-c")

        assert [m["To"] for m in inbox.messages] == ["ada@example.test", "bob@example.test"]
        assert inbox.auth_attempts == 2  # a new connection, logged in afresh
        await asyncio.to_thread(mailer.close)


async def test_a_connection_is_renewed_after_its_quota_of_messages(
    relay: tuple[RelayInbox, int], pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = relay
    monkeypatch.setattr(mailer_module, "MESSAGES_PER_CONNECTION", 2)
    mailer = _mailer(port, pki.ca_file)

    for i in range(3):
        await mailer.send(to="ada@example.test", subject="s", body="b", message_key=f"o-{i}-c")

    assert len(inbox.messages) == 3
    assert inbox.auth_attempts == 2
    await asyncio.to_thread(mailer.close)


async def test_a_wrong_password_is_a_typed_refusal_never_retried(
    relay: tuple[RelayInbox, int], pki: Pki
) -> None:
    inbox, port = relay

    with pytest.raises(ApplicationError) as raised:
        await _send(_mailer(port, pki.ca_file, password="wrong"))

    assert raised.value.type == MAIL_AUTHENTICATION_FAILED
    assert raised.value.non_retryable
    assert "wrong" not in str(raised.value)
    assert inbox.messages == []


async def test_a_certificate_from_an_unknown_ca_is_refused(
    relay: tuple[RelayInbox, int], other_pki: Pki
) -> None:
    inbox, port = relay

    with pytest.raises(ApplicationError) as raised:
        await _send(_mailer(port, other_pki.ca_file))

    assert raised.value.type == MAIL_CERTIFICATE_REJECTED
    assert raised.value.non_retryable
    assert inbox.logins == [] and inbox.messages == []  # the password never left


async def test_a_certificate_for_another_host_name_is_refused(pki: Pki, tmp_path: Path) -> None:
    # The relay's certificate names only "mail.elsewhere.test", signed by our CA.
    wrong_name = make_pki(tmp_path, hosts=("mail.elsewhere.test",))
    with smtp_relay(wrong_name) as (inbox, port):
        with pytest.raises(ApplicationError) as raised:
            await _send(_mailer(port, wrong_name.ca_file))

    assert raised.value.type == MAIL_CERTIFICATE_REJECTED
    assert inbox.messages == []


@pytest.mark.filterwarnings(IMPLICIT_TLS_WARNING)
async def test_implicit_tls_delivers(pki: Pki) -> None:
    with smtp_relay(pki, implicit_tls=True) as (inbox, port):
        await _send(_mailer(port, pki.ca_file, security=SmtpSecurity.TLS))

    [message] = inbox.messages
    assert message["Message-ID"] == "<order-1-c@shop.test>"
    assert inbox.logins == [USERNAME]


async def test_a_relay_without_starttls_is_refused_rather_than_sent_in_clear(
    pki: Pki,
) -> None:
    from aiosmtpd.controller import Controller

    from tests.support.smtp_relay import free_port

    inbox = RelayInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(ApplicationError) as raised:
            await _send(_mailer(port, pki.ca_file))
    finally:
        controller.stop()

    assert raised.value.type == MAIL_TLS_UNAVAILABLE
    assert inbox.messages == []
