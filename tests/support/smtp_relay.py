"""A real SMTP relay for tests: aiosmtpd requiring STARTTLS (or implicit TLS) and AUTH."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.tls_support import Pki

USERNAME = "relay-user"
PASSWORD = "app-password-1234"
IMPLICIT_TLS_WARNING = "ignore:Requiring AUTH while not requiring TLS:UserWarning"


class RelayInbox:
    """Keeps every message the relay accepted; answers DATA with a queue id."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self.auth_attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.auth_attempts += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == USERNAME
            and auth_data.password.decode() == PASSWORD
        )
        if ok:
            self.logins.append(USERNAME)
        # handled=False: aiosmtpd then answers the failure itself (535).
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_relay(
    pki: Pki, *, implicit_tls: bool = False, idle_timeout: float = 300.0
) -> Iterator[tuple[RelayInbox, int]]:
    """A relay on 127.0.0.1 requiring TLS before AUTH and AUTH before mail.

    ``idle_timeout``: seconds after which it hangs up on a silent client
    (aiosmtpd's default, 300, is RFC 5321's five minutes).
    """
    inbox = RelayInbox()
    port = free_port()
    context = pki.server_context()
    tls: dict[str, Any] = (
        {"ssl_context": context}
        if implicit_tls
        else {"tls_context": context, "require_starttls": True}
    )
    controller = _controller(inbox, port, implicit_tls, {**tls, "timeout": idle_timeout})
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _controller(
    inbox: RelayInbox, port: int, implicit_tls: bool, tls: dict[str, Any]
) -> Controller:
    return Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_required=True,
        # PLAIN only: smtplib's login tries every mechanism offered, so with
        # one a login is one attempt and tests can count retries.
        auth_exclude_mechanism=["LOGIN"],
        # Under implicit TLS aiosmtpd does not count the session as TLS and
        # would then hide AUTH; the whole session is TLS there anyway (it
        # warns about it: IMPLICIT_TLS_WARNING).
        auth_require_tls=not implicit_tls,
        **tls,
    )
