"""Email over SMTP: plain (dev sink), STARTTLS (port 587) or implicit TLS (port 465).

smtplib is blocking, so each send runs in a thread; the event loop that runs
the worker's other activities is never stalled by a slow mail server.

Failures are sorted into two kinds. Those no retry can fix (a wrong password,
a certificate that does not verify, a relay without the TLS we require, a 5xx
refusal) are raised as non-retryable typed errors (activities/errors.py);
everything else (a refused connection, a timeout, a 4xx) propagates and the
activity is retried.

Each message opens its own connection. A kept-alive pool (issue 16) would
save the TLS handshake per message; nothing here depends on there being none.
"""

from __future__ import annotations

import asyncio
import email.policy
import enum
import smtplib
import ssl
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
        smtp = await asyncio.to_thread(self._deliver, message)
        # The relay has accepted the message (its answer to DATA). Until the
        # caller marks it sent, a crash means a resend, so the goodbye (QUIT
        # and its answer, one more round trip) is said in the background
        # instead of inside that window.
        asyncio.get_running_loop().run_in_executor(None, _quit, smtp)
        return smtp.receipt

    def _deliver(self, message: EmailMessage) -> _ReceiptSMTP:
        """Connect, secure, log in and send; the open connection, its goodbye still due."""
        try:
            smtp = self._connect()
            try:
                if self._security is SmtpSecurity.STARTTLS:
                    smtp.starttls(context=self._tls)
                if self._username is not None:
                    password = self._password.get_secret_value() if self._password else ""
                    smtp.login(self._username, password)
                smtp.send_message(message)
            except BaseException:
                smtp.close()
                raise
            return smtp
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

    def _connect(self) -> _ReceiptSMTP:
        if self._security is SmtpSecurity.TLS:
            return _ReceiptSMTPS(self._host, self._port, timeout=self._timeout, context=self._tls)
        return _ReceiptSMTP(self._host, self._port, timeout=self._timeout)


def _quit(smtp: smtplib.SMTP) -> None:
    # The message is already accepted: a relay that hangs up first changes nothing.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class _ReceiptSMTP(smtplib.SMTP):
    """smtplib's client, keeping the relay's answer to DATA (it names the queue id)."""

    receipt: str | None = None

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        code, answer = super().data(msg)
        self.receipt = answer.decode(errors="replace")[:_RECEIPT_CHARS] or None
        return code, answer


class _ReceiptSMTPS(smtplib.SMTP_SSL, _ReceiptSMTP):
    """The same over implicit TLS."""
