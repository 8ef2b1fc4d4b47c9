"""The dev stack's SMTP sink: it accepts every message and keeps it in PostgreSQL.

Nothing leaves the machine. What it catches is stored in ``caught_mail`` so an
admin can read it at ``GET /admin/mail``, from any process of the stack.
"""

from __future__ import annotations

import asyncio
import email
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from core.db import SessionFactory
from core.models import CaughtMail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedMail:
    mail_from: str
    rcpt_to: str
    subject: str
    message_id: str | None
    body: str


def parse_envelope(envelope: Envelope) -> ParsedMail:
    raw = envelope.original_content or envelope.content or b""
    if isinstance(raw, str):
        raw = raw.encode()
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)  # the default policy's class
    part = message.get_body(preferencelist=("plain", "html"))
    try:
        body = part.get_content() if part is not None else ""
    except (LookupError, KeyError):  # an unknown charset: keep the raw text readable
        body = raw.decode(errors="replace")
    message_id = message.get("Message-ID")
    return ParsedMail(
        mail_from=(envelope.mail_from or "")[:320],
        rcpt_to=", ".join(envelope.rcpt_tos),
        subject=str(message.get("Subject", "")),
        message_id=str(message_id)[:255] if message_id else None,
        body=str(body).replace("\r\n", "\n"),
    )


class CaughtMailHandler:
    """aiosmtpd handler that stores each message as a ``caught_mail`` row."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    # The name is aiosmtpd's hook for a complete message.
    async def handle_DATA(self, server: SMTP, session: Any, envelope: Envelope) -> str:
        mail = parse_envelope(envelope)
        try:
            async with self.sessions() as db, db.begin():
                db.add(
                    CaughtMail(
                        mail_from=mail.mail_from,
                        rcpt_to=mail.rcpt_to,
                        subject=mail.subject,
                        message_id=mail.message_id,
                        body=mail.body,
                    )
                )
        except Exception:  # a transient 4xx makes the sender retry instead of losing it
            log.exception("could not store a caught message")
            return "451 Requested action aborted: local error in processing"
        log.info("caught mail to %s: %s", mail.rcpt_to, mail.subject)
        return "250 Message accepted for delivery"


async def start_smtp_sink(sessions: SessionFactory, host: str, port: int) -> asyncio.Server:
    """Serve SMTP on ``host:port`` in the running event loop, until the server is closed."""
    loop = asyncio.get_running_loop()
    handler = CaughtMailHandler(sessions)
    # A fixed hostname: aiosmtpd would otherwise look up the FQDN, which can stall.
    return await loop.create_server(
        lambda: SMTP(handler, hostname="ordersaga-dev", enable_SMTPUTF8=True, loop=loop),
        host,
        port,
    )
