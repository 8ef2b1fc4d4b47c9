"""Twilio and Africa's Talking through their real SDKs, against a local stand-in endpoint.

Each stub implements the provider's documented send call: Twilio's
``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (HTTP basic auth,
form To/From/Body, 201 with the message ``sid``), Africa's Talking's
``POST /version1/messaging`` (``apiKey`` header, form
username/to/message/from, ``SMSMessageData.Recipients``). What the SDK sent is
checked, and each error answer is sorted: retryable or not.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError

from activities.errors import (
    NOTIFICATION_PROVIDER_UNAVAILABLE,
    SMS_AUTHENTICATION_FAILED,
    SMS_RECIPIENT_INVALID,
)
from activities.sms import LoggingSms, build_sms
from activities.sms_africastalking import AfricasTalkingSms
from activities.sms_twilio import TwilioSms
from core.settings import Settings
from tests.support.sms_provider_stub import ProviderStub, provider_stub

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token"
FROM = "+15005550006"
TO = "+254711082123"


def _twilio(stub: ProviderStub, **options: Any) -> TwilioSms:
    options.setdefault("from_number", FROM)
    return TwilioSms(SID, SecretStr(TOKEN), base_url=stub.base_url, timeout_seconds=5, **options)


def _twilio_message(sid: str = "SM0123") -> dict[str, Any]:
    return {"sid": sid, "status": "queued", "to": TO, "from": FROM, "body": "Order confirmed"}


def _twilio_error(status: int, code: int) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": "refused", "more_info": "", "status": status}


async def test_twilio_sends_the_documented_request_and_returns_the_sid() -> None:
    with provider_stub((201, _twilio_message("SM42"))) as stub:
        message_id = await _twilio(stub).send(to=TO, text="Order confirmed")

    assert message_id == "SM42"
    [request] = stub.seen
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.form == {"To": TO, "From": FROM, "Body": "Order confirmed"}


async def test_twilio_through_a_messaging_service_sends_no_from() -> None:
    with provider_stub((201, _twilio_message())) as stub:
        await _twilio(stub, from_number=None, messaging_service_sid="MG1").send(to=TO, text="Hi")

    assert stub.seen[0].form == {"To": TO, "MessagingServiceSid": "MG1", "Body": "Hi"}


@pytest.mark.parametrize(
    ("answer", "error_type", "retryable"),
    [
        (_twilio_error(400, 21211), SMS_RECIPIENT_INVALID, False),  # invalid 'To' number
        (_twilio_error(400, 21614), SMS_RECIPIENT_INVALID, False),  # not a mobile number
        (_twilio_error(401, 20003), SMS_AUTHENTICATION_FAILED, False),
        (_twilio_error(429, 20429), NOTIFICATION_PROVIDER_UNAVAILABLE, True),
        (_twilio_error(503, 20500), NOTIFICATION_PROVIDER_UNAVAILABLE, True),
    ],
)
async def test_twilio_errors_are_sorted(
    answer: tuple[int, Any], error_type: str, retryable: bool
) -> None:
    with provider_stub(answer) as stub, pytest.raises(ApplicationError) as raised:
        await _twilio(stub).send(to=TO, text="Hi")

    assert raised.value.type == error_type
    assert raised.value.non_retryable is not retryable


def _at(stub: ProviderStub, sender_id: str | None = "SHOP") -> AfricasTalkingSms:
    return AfricasTalkingSms(
        "shop", SecretStr("at-api-key"), sender_id=sender_id, base_url=stub.base_url
    )


def _at_answer(status_code: int, status: str, message_id: str = "None") -> dict[str, Any]:
    return {
        "SMSMessageData": {
            "Message": "Sent to 1/1",
            "Recipients": [
                {
                    "statusCode": status_code,
                    "number": TO,
                    "status": status,
                    "cost": "KES 0.8000",
                    "messageId": message_id,
                }
            ],
        }
    }


async def test_africastalking_sends_the_documented_request_and_returns_the_id() -> None:
    with provider_stub((201, _at_answer(101, "Success", "ATXid_42"))) as stub:
        message_id = await _at(stub).send(to=TO, text="Order confirmed")

    assert message_id == "ATXid_42"
    [request] = stub.seen
    assert request.path == "/version1/messaging"
    assert request.headers["apikey"] == "at-api-key"
    assert request.form["username"] == "shop"
    assert request.form["to"] == TO
    assert request.form["message"] == "Order confirmed"
    assert request.form["from"] == "SHOP"


@pytest.mark.parametrize(
    ("answer", "error_type", "retryable"),
    [
        ((201, _at_answer(403, "InvalidPhoneNumber")), SMS_RECIPIENT_INVALID, False),
        ((201, _at_answer(500, "InternalServerError")), NOTIFICATION_PROVIDER_UNAVAILABLE, True),
        ((401, {"error": "auth"}), SMS_AUTHENTICATION_FAILED, False),
        ((429, {"error": "slow down"}), NOTIFICATION_PROVIDER_UNAVAILABLE, True),
        ((502, {"error": "gateway"}), NOTIFICATION_PROVIDER_UNAVAILABLE, True),
    ],
)
async def test_africastalking_errors_are_sorted(
    answer: tuple[int, Any], error_type: str, retryable: bool
) -> None:
    with provider_stub(answer) as stub, pytest.raises(ApplicationError) as raised:
        await _at(stub).send(to=TO, text="Hi")

    assert raised.value.type == error_type
    assert raised.value.non_retryable is not retryable


async def test_africastalking_refuses_a_number_not_in_e164_before_any_request() -> None:
    with provider_stub((201, _at_answer(101, "Success"))) as stub:
        with pytest.raises(ApplicationError) as raised:
            await _at(stub).send(to="0711082123", text="Hi")

    assert raised.value.type == SMS_RECIPIENT_INVALID
    assert stub.seen == []


def test_the_worker_builds_the_sender_its_settings_name() -> None:
    base: dict[str, Any] = {"_env_file": None}
    assert isinstance(build_sms(Settings(**base)), LoggingSms)
    twilio = Settings(
        **base,
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from_number=FROM,
    )
    assert isinstance(build_sms(twilio), TwilioSms)
    africastalking = Settings(
        **base,
        sms_provider="africastalking",
        africastalking_username="shop",
        africastalking_api_key="key",
    )
    assert isinstance(build_sms(africastalking), AfricasTalkingSms)
