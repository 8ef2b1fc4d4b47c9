"""SMS through Twilio's Messages resource, with the official ``twilio`` SDK.

The SDK is blocking (requests), so each send runs in a thread. ``base_url``
replaces ``https://api.twilio.com`` on the SDK's own ``Api`` domain, the
attribute every Twilio resource URL is built from: the tests point it at a
local server and the SDK's real request (auth, form, path) is what arrives.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.errors import (
    SMS_AUTHENTICATION_FAILED,
    SMS_RECIPIENT_INVALID,
    SMS_REFUSED,
    notification_refused,
    provider_unavailable,
)

# The SDK logs every request at INFO, the recipient's number included.
_SDK_LOG = logging.getLogger("ordersaga.sms.twilio_sdk")
_SDK_LOG.setLevel(logging.WARNING)

# Twilio error codes (twilio.com/docs/api/errors) that mean "this number
# cannot be texted": invalid, not mobile, unsubscribed (STOP), unroutable,
# region not enabled. The same number fails the same way on every retry.
_BAD_RECIPIENT_CODES = frozenset({21211, 21214, 21217, 21401, 21408, 21610, 21612, 21614})


class TwilioSms:
    def __init__(
        self,
        account_sid: str,
        auth_token: SecretStr,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        timeout_seconds: float = 10.0,
        base_url: str | None = None,
    ) -> None:
        self._from = from_number
        self._service = messaging_service_sid
        self._client = Client(
            account_sid,
            auth_token.get_secret_value(),
            http_client=TwilioHttpClient(timeout=timeout_seconds, logger=_SDK_LOG),
        )
        if base_url is not None:
            self._client.api.base_url = base_url

    async def send(self, *, to: str, text: str) -> str | None:
        return await asyncio.to_thread(self._send, to, text)

    def _send(self, to: str, text: str) -> str | None:
        try:
            # A Messaging Service picks the sender itself; From is then left out.
            message = self._client.messages.create(
                to=to,
                body=text,
                from_=self._from if self._service is None else None,
                messaging_service_sid=self._service,
            )
        except TwilioRestException as err:
            raise _classify(err.status, err.code) from None
        sid: str | None = message.sid
        return sid


def _classify(status: int, code: int | None) -> Exception:
    if status == 429 or status >= 500:
        return provider_unavailable(f"Twilio answered {status}")
    if status == 401:
        return notification_refused(SMS_AUTHENTICATION_FAILED, "Twilio refused the credentials")
    if code in _BAD_RECIPIENT_CODES:
        return notification_refused(SMS_RECIPIENT_INVALID, f"Twilio cannot text it ({code})")
    return notification_refused(SMS_REFUSED, f"Twilio refused the message ({status}, {code})")
