"""Email over SMTP.

smtplib is blocking, so each send runs in a thread; the event loop that runs
the worker's other activities is never stalled by a slow mail server.
"""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
from email.message import EmailMessage
from typing import Protocol

# Header lines up to RFC 5322's hard limit of 998: the default (78) would fold
# the long Message-ID onto a continuation line, and dedupers compare it as text.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


class Mailer(Protocol):
    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> None:
        """Send one email. ``message_key`` is stable per logical message."""
        ...


class SmtpMailer:
    def __init__(
        self, host: str, port: int, mail_from: str, *, timeout_seconds: float = 10.0
    ) -> None:
        self._host = host
        self._port = port
        self._from = mail_from
        self._timeout = timeout_seconds
        self._domain = mail_from.rpartition("@")[2] or "localhost"

    def message_id(self, message_key: str) -> str:
        # Deterministic rather than random: if a crash between sending and
        # recording makes us send again, the copies share one Message-ID and
        # mail systems downstream can drop the duplicate.
        return f"<{message_key}@{self._domain}>"

    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> None:
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = self.message_id(message_key)
        message.set_content(body)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        # Connection and SMTP errors propagate: they are transient from the
        # saga's point of view and the activity is retried.
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            smtp.send_message(message)
