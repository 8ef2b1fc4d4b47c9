"""Text messages behind an interface; development logs them instead of sending."""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger("ordersaga.sms")


class SmsSender(Protocol):
    async def send(self, *, to: str, text: str) -> None: ...


def mask_phone(phone: str) -> str:
    """``+15551234589`` -> ``+1***89``: enough to tell numbers apart, not to call one."""
    if len(phone) <= 4:
        return "***"
    return f"{phone[:2]}***{phone[-2:]}"


class LoggingSms:
    """The development SMS channel: one log line per message, phone masked."""

    async def send(self, *, to: str, text: str) -> None:
        logger.info("sms to %s: %s", mask_phone(to), text)
