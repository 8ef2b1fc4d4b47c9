"""Text messages behind an interface: a log line in development, a provider otherwise.

``build_sms`` picks the sender named by ``ORDERSAGA_SMS_PROVIDER``. Neither
provider takes an idempotency key for a send (Twilio documents none for its
Messages resource; Africa's Talking none for bulk SMS), so a send whose answer
was lost is sent again: SMS is at-least-once, like email, but a resend cannot
be collapsed by the phone.
"""

from __future__ import annotations

import logging
from typing import Protocol

from core.settings import Settings

logger = logging.getLogger("ordersaga.sms")


class SmsSender(Protocol):
    async def send(self, *, to: str, text: str) -> str | None:
        """Send one text to an E.164 number; the provider's message id if it gave one."""
        ...


def mask_phone(phone: str) -> str:
    """``+15551234589`` -> ``+1***89``: enough to tell numbers apart, not to call one."""
    if len(phone) <= 4:
        return "***"
    return f"{phone[:2]}***{phone[-2:]}"


class LoggingSms:
    """The development SMS channel: one log line per message, phone masked."""

    async def send(self, *, to: str, text: str) -> str | None:
        logger.info("sms to %s: %s", mask_phone(to), text)
        return None


def build_sms(settings: Settings) -> SmsSender:
    """The sender ``settings`` name; the settings validator made sure it is complete."""
    if settings.sms_provider == "twilio":
        from activities.sms_twilio import TwilioSms

        assert settings.twilio_account_sid and settings.twilio_auth_token
        return TwilioSms(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    if settings.sms_provider == "africastalking":
        from activities.sms_africastalking import AfricasTalkingSms

        assert settings.africastalking_username and settings.africastalking_api_key
        return AfricasTalkingSms(
            settings.africastalking_username,
            settings.africastalking_api_key,
            sender_id=settings.africastalking_sender_id,
            timeout_seconds=settings.sms_timeout_seconds,
        )
    return LoggingSms()
