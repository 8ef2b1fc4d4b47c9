"""The auth service's own mails: a reset link, a verification link, "you already have an account".

The API sends them itself, through the same ``SmtpMailer`` (and so the same
relay, TLS and credentials) as the worker's order mail, from a FastAPI
background task: the response is sent first, so its timing says nothing about
whether a mail went out (or about the relay's speed). A mail lost with its
process (a crash right after the 202) is not retried; the customer asks again,
which is what a reset or verification form invites anyway. Order mail, which
nobody asks for twice, goes through the saga instead.

Errors are logged by type only: the message carries a live token.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from activities.mailer import SmtpMailer
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountMail:
    to: str
    subject: str
    body: str
    key: str  # stable per mail: its Message-ID is <key@domain>


def _link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def reset_mail(settings: Settings, to: str, name: str, token: str, key: str) -> AccountMail:
    minutes = settings.password_reset_ttl_seconds // 60
    body = (
        f"Hello {name},\n\nSomeone (we hope you) asked to reset the password of your "
        f"ordersaga account. To choose a new one, open this link within {minutes} minutes:\n\n"
        f"{_link(settings, '/reset-password', token)}\n\n"
        "It works once. If you did not ask, ignore this mail: your password stays as it is.\n"
    )
    return AccountMail(to, "Reset your password", body, key)


def verify_mail(settings: Settings, to: str, name: str, token: str, key: str) -> AccountMail:
    body = (
        f"Hello {name},\n\nPlease confirm that this is your email address:\n\n"
        f"{_link(settings, '/verify-email', token)}\n\n"
        "If you did not create an ordersaga account, ignore this mail.\n"
    )
    return AccountMail(to, "Confirm your email address", body, key)


def account_exists_mail(settings: Settings, to: str, name: str, key: str) -> AccountMail:
    body = (
        f"Hello {name},\n\nSomeone (we hope you) tried to create an ordersaga account with "
        "this email address, but you already have one. To sign in without your password, "
        f"ask for a reset at {settings.public_url.rstrip('/')}/forgot-password.\n\n"
        "If it was not you, nothing changed and you need not do anything.\n"
    )
    return AccountMail(to, "You already have an account", body, key)


async def send_account_mail(settings: Settings, mail: AccountMail) -> None:
    """Run as a background task, after the response."""
    mailer = SmtpMailer.from_settings(settings)
    try:
        await mailer.send(to=mail.to, subject=mail.subject, body=mail.body, message_key=mail.key)
    except Exception as err:  # nothing to answer any more; the customer may ask again
        log.error("account mail %s not sent: %s", mail.key, type(err).__name__)
    finally:
        # A mailer of its own, used once: its kept connection has no next message.
        await asyncio.to_thread(mailer.close)
