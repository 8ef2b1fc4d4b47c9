"""Reading what the dev SMTP sink caught: mail to an address, and the token of a mailed link.

The sink (tooling/smtp_sink.py) stores every message in ``caught_mail``; the
``sink_port`` fixture (tests/support/e2e_fixtures.py) runs one for a test.
"""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from core.db import SessionFactory
from core.models import CaughtMail

MAIL_BOUND_SECONDS = 10.0


async def mails_to(sessions: SessionFactory, to: str, count: int = 1) -> list[CaughtMail]:
    """The mails to ``to``, once there are ``count`` of them (bounded poll)."""
    deadline = asyncio.get_running_loop().time() + MAIL_BOUND_SECONDS
    while True:
        async with sessions() as session:
            mails = list(
                await session.scalars(
                    select(CaughtMail).where(CaughtMail.rcpt_to == to).order_by(CaughtMail.id)
                )
            )
        if len(mails) >= count:
            return mails
        assert asyncio.get_running_loop().time() < deadline, f"{len(mails)} mails to {to}"
        await asyncio.sleep(0.05)


def link_token(mail: CaughtMail, path: str, *, origin: str = "https://shop.test") -> str:
    """The ``token`` of the link to ``origin + path`` in ``mail``."""
    match = re.search(rf"{re.escape(origin)}{path}\?token=([A-Za-z0-9_-]+)", mail.body)
    assert match, "no link in the mail"
    return match.group(1)
