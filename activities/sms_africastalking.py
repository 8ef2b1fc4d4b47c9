"""SMS through Africa's Talking, with the official ``africastalking`` SDK.

The SDK's ``SMSService.send`` builds the request (URL, ``apiKey`` header, form
fields, its E.164 check); two hooks of its own are overridden:

- ``_init_service``, where the SDK picks its base URL (live or sandbox), to
  take ``base_url`` instead when one is given (the tests' local server);
- ``_make_request``, the transport, because the SDK's own raises one
  exception with the body only for any non-2xx answer, and a 503 (retry) must
  be told apart from a 401 (wrong key, never retried).

Its answer lists each recipient with a status code
(developers.africastalking.com, "SMS / Sending"): 100-102 accepted, the rest
refusals, of which a few are transient.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from africastalking.SMS import SMSService
from pydantic import SecretStr

from activities.errors import (
    SMS_AUTHENTICATION_FAILED,
    SMS_RECIPIENT_INVALID,
    SMS_REFUSED,
    notification_refused,
    provider_unavailable,
)

_ACCEPTED = frozenset({100, 101, 102})  # Processed, Sent, Queued
# InvalidPhoneNumber, UnsupportedNumberType, UserInBlacklist, CouldNotRoute,
# DoNotDisturbRejection: this number will not take it, now or later.
_BAD_RECIPIENT = frozenset({403, 404, 406, 407, 409})
# InsufficientBalance (a top-up fixes it), InternalServerError, GatewayError.
_TRANSIENT = frozenset({405, 500, 501})


class _SmsService(SMSService):  # type: ignore[misc]  # the SDK is untyped
    def __init__(self, username: str, api_key: str, base_url: str | None, timeout: float) -> None:
        self._base_override = base_url
        self._http = httpx.Client(timeout=timeout)
        super().__init__(username, api_key)

    def _init_service(self) -> None:
        super()._init_service()
        if self._base_override is not None:
            self._baseUrl = self._base_override.rstrip("/") + "/version1"

    def _make_request(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        data: dict[str, Any] | None,
        params: dict[str, Any] | None,
        callback: Any = None,
        timeout: Any = None,
    ) -> httpx.Response:
        return self._http.request(method, url, headers=headers, data=data, params=params)


class AfricasTalkingSms:
    def __init__(
        self,
        username: str,
        api_key: SecretStr,
        *,
        sender_id: str | None = None,
        timeout_seconds: float = 10.0,
        base_url: str | None = None,
    ) -> None:
        self._sender_id = sender_id
        self._service = _SmsService(username, api_key.get_secret_value(), base_url, timeout_seconds)

    async def send(self, *, to: str, text: str) -> str | None:
        return await asyncio.to_thread(self._send, to, text)

    def _send(self, to: str, text: str) -> str | None:
        try:
            response = self._service.send(text, [to], sender_id=self._sender_id)
        except ValueError:  # the SDK's own E.164 check
            raise notification_refused(SMS_RECIPIENT_INVALID, "not an E.164 number") from None
        except httpx.TransportError as err:
            name = type(err).__name__
            raise provider_unavailable(f"Africa's Talking unreachable: {name}") from None
        assert isinstance(response, httpx.Response)
        status = response.status_code
        if status == 429 or status >= 500:
            raise provider_unavailable(f"Africa's Talking answered {status}")
        if status == 401:
            raise notification_refused(
                SMS_AUTHENTICATION_FAILED, "Africa's Talking refused the credentials"
            )
        if not 200 <= status < 300:
            raise notification_refused(SMS_REFUSED, f"Africa's Talking answered {status}")
        return _recipient_outcome(response.json())


def _recipient_outcome(answer: Any) -> str | None:
    try:
        recipient = answer["SMSMessageData"]["Recipients"][0]
        code = int(recipient["statusCode"])
    except (KeyError, IndexError, TypeError, ValueError):
        # No recipient at all: the answer's Message says why (e.g. "InvalidSenderId").
        raise notification_refused(SMS_REFUSED, "Africa's Talking accepted no recipient") from None
    if code in _ACCEPTED:
        message_id = recipient.get("messageId")
        return str(message_id) if message_id else None
    if code in _TRANSIENT:
        raise provider_unavailable(f"Africa's Talking status {code}")
    if code in _BAD_RECIPIENT:
        raise notification_refused(SMS_RECIPIENT_INVALID, f"Africa's Talking status {code}")
    raise notification_refused(SMS_REFUSED, f"Africa's Talking status {code}")
