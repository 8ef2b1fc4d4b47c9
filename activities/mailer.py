"""Email over SMTP: plain (dev sink), STARTTLS (port 587) or implicit TLS (port 465).

smtplib is blocking, so each send runs in a thread; the event loop that runs
the worker's other activities is never stalled by a slow mail server.

Failures are sorted into two kinds. Those no retry can fix (a wrong password,
a certificate that does not verify, a relay without the TLS we require, a 5xx
refusal) are raised as non-retryable typed errors (activities/errors.py);
everything else (a refused connection, a timeout, a 4xx) propagates and the
activity is retried.

Connections are kept alive between messages (``_IdleConnections``): a
message normally costs RSET, MAIL, RCPT and DATA on a connection that is
already connected, secured and logged in, instead of a TCP connect, the TLS
handshake, EHLO twice and AUTH. A kept connection the relay has dropped
meanwhile fails its RSET and is replaced before anything is sent, so reuse
never risks a message.
"""

from __future__ import annotations

import asyncio
import email.policy
import enum
import smtplib
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr
from typing_extensions import Buffer

from activities.errors import (
    MAIL_AUTHENTICATION_FAILED,
    MAIL_CERTIFICATE_REJECTED,
    MAIL_REFUSED,
    MAIL_TLS_UNAVAILABLE,
    notification_refused,
)
from core.settings import Settings

# Header lines up to RFC 5322's hard limit of 998: the default (78) would fold
# the long Message-ID onto a continuation line, and dedupers compare it as text.
_POLICY = email.policy.SMTP.clone(max_line_length=998)
# What a notification row keeps of the relay's answer to DATA (its queue id).
_RECEIPT_CHARS = 255
# Kept-alive connections: how many may wait for the next message, for how
# long (relays drop idle clients after a minute or more; RFC 5321 4.5.3.2
# lets them after 5), and how many messages one carries before it is renewed
# (some relays cap messages per connection).
MAX_IDLE_CONNECTIONS = 8
IDLE_SECONDS = 30.0
MESSAGES_PER_CONNECTION = 100


class SmtpSecurity(enum.StrEnum):
    NONE = "none"  # plain text: the dev sink on the same machine only
    STARTTLS = "starttls"  # connect in plain, then upgrade before AUTH (port 587)
    TLS = "tls"  # TLS from the first byte, "SMTPS" (port 465)


class Mailer(Protocol):
    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> str | None:
        """Send one email; the relay's receipt (queue id) if it gave one.

        ``message_key`` is stable per logical message.
        """
        ...


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        mail_from: str,
        *,
        timeout_seconds: float = 10.0,
        security: SmtpSecurity = SmtpSecurity.NONE,
        username: str | None = None,
        password: SecretStr | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._from = mail_from
        self._timeout = timeout_seconds
        self._security = security
        self._username = username
        self._password = password
        self._domain = mail_from.rpartition("@")[2] or "localhost"
        # Built once: loading the CA bundle per message would cost more than
        # the send. The defaults verify the chain and the host name.
        self._tls = (
            ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            if security is not SmtpSecurity.NONE
            else None
        )
        self._idle = _IdleConnections()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            timeout_seconds=settings.smtp_timeout_seconds,
            security=SmtpSecurity(settings.smtp_security_mode),
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
        )

    def message_id(self, message_key: str) -> str:
        # Deterministic rather than random: if a crash between sending and
        # recording makes us send again, the copies share one Message-ID and
        # mail systems downstream can drop the duplicate.
        return f"<{message_key}@{self._domain}>"

    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> str | None:
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = self.message_id(message_key)
        message.set_content(body)
        receipt, spare = await asyncio.to_thread(self._deliver, message)
        # The relay has accepted the message (its answer to DATA). Until the
        # caller marks it sent, a crash means a resend, so a connection not
        # kept says its goodbye (QUIT, one more round trip) in the background
        # instead of inside that window.
        if spare is not None:
            asyncio.get_running_loop().run_in_executor(None, _quit, spare)
        return receipt

    def close(self) -> None:
        """Say goodbye on every idle connection (a stopping process)."""
        for smtp in self._idle.drain():
            _quit(smtp)

    def _deliver(self, message: EmailMessage) -> tuple[str | None, _ReceiptSMTP | None]:
        """Send on a kept connection, or a new one.

        The relay's receipt, and the connection if it is not kept (too many
        idle, or its quota of messages sent): its goodbye is still due.
        """
        try:
            smtp = self._idle.take() or self._open()
            try:
                smtp.receipt = None
                smtp.send_message(message)
            except BaseException:
                smtp.close()
                raise
            # Read before giving it back: another send may take it at once.
            receipt = smtp.receipt
            smtp.messages += 1
            kept = smtp.messages < MESSAGES_PER_CONNECTION and self._idle.give_back(smtp)
            return receipt, None if kept else smtp
        except smtplib.SMTPAuthenticationError as err:
            # Only the code: the relay's text may quote the user name back.
            raise notification_refused(
                MAIL_AUTHENTICATION_FAILED,
                f"the mail relay refused the login ({err.smtp_code})",
            ) from None
        except ssl.SSLCertVerificationError as err:
            raise notification_refused(
                MAIL_CERTIFICATE_REJECTED,
                f"the mail relay's certificate did not verify: {err.verify_message}",
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise notification_refused(
                MAIL_TLS_UNAVAILABLE, "the mail relay offers no STARTTLS (or no AUTH)"
            ) from None
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise notification_refused(
                    MAIL_REFUSED, f"the mail relay refused the recipient ({codes[0]})"
                ) from None
            raise
        except smtplib.SMTPResponseException as err:
            # 5xx is the relay's final word (RFC 5321 4.2.1); 4xx asks us to retry.
            if 500 <= err.smtp_code < 600:
                raise notification_refused(
                    MAIL_REFUSED, f"the mail relay refused the message ({err.smtp_code})"
                ) from None
            raise

    def _open(self) -> _ReceiptSMTP:
        """A new connection: connected, secured and logged in as configured."""
        smtp = self._connect()
        try:
            if self._security is SmtpSecurity.STARTTLS:
                smtp.starttls(context=self._tls)
            if self._username is not None:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self._username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connect(self) -> _ReceiptSMTP:
        if self._security is SmtpSecurity.TLS:
            return _ReceiptSMTPS(self._host, self._port, timeout=self._timeout, context=self._tls)
        return _ReceiptSMTP(self._host, self._port, timeout=self._timeout)


class _IdleConnections:
    """Connections waiting for the next message; each used by one thread at a time.

    ``take`` hands out the most recently used one that is still fresh and
    answers RSET (which also clears any half-done transaction); a stale or
    dropped one is closed and the next is tried. Thread-safe: sends run in
    the default executor's threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[float, _ReceiptSMTP]] = []

    def take(self) -> _ReceiptSMTP | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                since, smtp = self._idle.pop()
            if time.monotonic() - since > IDLE_SECONDS:
                _quit(smtp)
                continue
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                # The relay hung up meanwhile: nothing was sent on it.
                smtp.close()
                continue
            return smtp

    def give_back(self, smtp: _ReceiptSMTP) -> bool:
        """Keep ``smtp`` for the next message; False when enough are kept already."""
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append((time.monotonic(), smtp))
                return True
        return False

    def drain(self) -> list[_ReceiptSMTP]:
        with self._lock:
            idle, self._idle = self._idle, []
        return [smtp for _, smtp in idle]


def _quit(smtp: smtplib.SMTP) -> None:
    # Every message on it is already accepted: a relay that hangs up first
    # changes nothing.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class _ReceiptSMTP(smtplib.SMTP):
    """smtplib's client, keeping the relay's answer to DATA (it names the queue id)."""

    receipt: str | None = None
    messages = 0  # sent on this connection

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        code, answer = super().data(msg)
        self.receipt = answer.decode(errors="replace")[:_RECEIPT_CHARS] or None
        return code, answer


class _ReceiptSMTPS(smtplib.SMTP_SSL, _ReceiptSMTP):
    """The same over implicit TLS."""
