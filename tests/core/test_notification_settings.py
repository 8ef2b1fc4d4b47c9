"""Mail and SMS settings are checked at start, so a half-configured channel fails the rollout."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import Settings

_PRODUCTION: dict[str, Any] = {
    "mode": "production",
    "database_url": "postgresql://u:p@db/x",
    "temporal_address": "temporal:7233",
    "jwks_url": "http://auth:8001/.well-known/jwks.json",
    "admin_email": "admin@shop.example.com",
    "mail_from": "orders@shop.example.com",
}


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_security_defaults_to_none_in_dev_and_starttls_in_a_deployment() -> None:
    assert _settings().smtp_security_mode == "none"
    deployed = _settings(**_PRODUCTION, smtp_host="smtp.gmail.com", smtp_port=587)
    assert deployed.smtp_security_mode == "starttls"


def test_clear_text_smtp_to_another_host_is_refused_outside_dev() -> None:
    with pytest.raises(ValidationError, match="ORDERSAGA_SMTP_SECURITY"):
        _settings(**_PRODUCTION, smtp_host="relay.example.com", smtp_security="none")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_clear_text_smtp_to_a_local_sidecar_is_allowed(host: str) -> None:
    assert _settings(**_PRODUCTION, smtp_host=host, smtp_security="none").smtp_host == host


def test_clear_text_smtp_anywhere_is_fine_in_dev() -> None:
    assert _settings(smtp_host="mailpit", smtp_security="none").smtp_security_mode == "none"


def test_a_username_without_a_password_is_refused() -> None:
    with pytest.raises(ValidationError, match="ORDERSAGA_SMTP_PASSWORD"):
        _settings(smtp_username="orders@shop.example.com")


@pytest.mark.parametrize(
    ("provider", "given", "missing"),
    [
        ("twilio", {"twilio_account_sid": "AC1"}, "ORDERSAGA_TWILIO_AUTH_TOKEN"),
        (
            "twilio",
            {"twilio_account_sid": "AC1", "twilio_auth_token": "t"},
            "ORDERSAGA_TWILIO_FROM_NUMBER",
        ),
        ("africastalking", {"africastalking_username": "shop"}, "ORDERSAGA_AFRICASTALKING_API_KEY"),
    ],
)
def test_an_sms_provider_without_its_credentials_is_refused(
    provider: str, given: dict[str, str], missing: str
) -> None:
    with pytest.raises(ValidationError, match=missing):
        _settings(sms_provider=provider, **given)


def test_a_twilio_messaging_service_stands_for_the_from_number() -> None:
    settings = _settings(
        sms_provider="twilio",
        twilio_account_sid="AC1",
        twilio_auth_token="t",
        twilio_messaging_service_sid="MG1",
    )
    assert settings.twilio_auth_token is not None
    assert settings.twilio_auth_token.get_secret_value() == "t"


def test_a_mail_catcher_named_local_may_take_clear_text() -> None:
    settings = _settings(
        **_PRODUCTION, smtp_host="mailpit", smtp_security="none", smtp_local_hosts=["mailpit"]
    )
    assert settings.smtp_security_mode == "none"
