"""The chart's mail and SMS wiring: Gmail / SES over STARTTLS, Twilio, Africa's Talking.

The values below are the ones docs/DEPLOY.md shows. Each is rendered, and the
pods' environment (ConfigMap, plain env, the Secret's keys) must start the
processes in production mode with the channel configured; secrets only reach
the pods that send (worker: order mail and SMS; auth: account mail).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from helm_python.chart import Chart
from helm_python.errors import HelmRenderError, HelmValuesError

from activities.mailer import SmtpMailer
from activities.sms import build_sms
from activities.sms_africastalking import AfricasTalkingSms
from activities.sms_twilio import TwilioSms
from tests.deploy.test_deploy_helm import (
    NAMESPACE,
    RELEASE,
    Rendered,
    container,
    pod_env,
    with_minimum,
)
from tests.support.deploy_support import CHART, deep_merge, fresh_pem, settings_from_env

GMAIL: dict[str, Any] = {
    "smtp": {
        "host": "smtp.gmail.com",
        "port": 587,
        "security": "starttls",
        "username": "orders@shop.example.com",
        "from": "orders@shop.example.com",
    },
    "publicUrl": "https://shop.example.com",
}
SES: dict[str, Any] = {
    "smtp": {
        "host": "email-smtp.eu-west-1.amazonaws.com",
        "port": 587,
        "security": "starttls",
        "username": "AKIAEXAMPLESMTPUSER",
        "from": "orders@shop.example.com",
    }
}
TWILIO: dict[str, Any] = {
    "sms": {
        "provider": "twilio",
        "twilio": {"accountSid": "AC" + "0" * 32, "fromNumber": "+15005550006"},
    }
}
AFRICASTALKING: dict[str, Any] = {
    "sms": {
        "provider": "africastalking",
        "africastalking": {"username": "shop", "senderId": "SHOP"},
    }
}

SECRET = {
    "DATABASE_URL": "postgresql://ordersaga:pw@db.internal:5432/ordersaga",
    "ORDERSAGA_SMTP_PASSWORD": "abcd efgh ijkl mnop",  # a Gmail app password's shape
    "ORDERSAGA_TWILIO_AUTH_TOKEN": "twilio-token",
    "ORDERSAGA_AFRICASTALKING_API_KEY": "at-key",
}


@pytest.fixture(scope="module")
def chart() -> Any:
    with Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def secret() -> dict[str, str]:
    return {**SECRET, "ORDERSAGA_JWT_PRIVATE_KEYS": json.dumps([fresh_pem()])}


def _secret_refs(workload: dict[str, Any]) -> set[str]:
    return {
        var["valueFrom"]["secretKeyRef"]["key"]
        for var in container(workload).get("env", [])
        if "valueFrom" in var
    }


@pytest.mark.parametrize("relay", [GMAIL, SES], ids=["gmail", "ses"])
def test_a_starttls_relay_with_a_password_from_the_secret(
    chart: Chart, relay: dict[str, Any], secret: dict[str, str]
) -> None:
    rendered = Rendered(chart, with_minimum(relay))

    for component in ("worker", "auth"):
        env = pod_env(rendered, rendered.deployment(component), secret)
        settings = settings_from_env(env)
        assert settings.mode == "production"
        assert settings.smtp_host == relay["smtp"]["host"]
        assert settings.smtp_security_mode == "starttls"
        assert settings.smtp_username == relay["smtp"]["username"]
        assert settings.smtp_password is not None
        assert settings.smtp_password.get_secret_value() == SECRET["ORDERSAGA_SMTP_PASSWORD"]
        assert isinstance(SmtpMailer.from_settings(settings), SmtpMailer)
    api = rendered.deployment("api")
    assert "ORDERSAGA_SMTP_PASSWORD" not in _secret_refs(api)
    assert settings_from_env(pod_env(rendered, api, secret)).smtp_password is None


@pytest.mark.parametrize(
    ("values", "sender", "key"),
    [
        (TWILIO, TwilioSms, "ORDERSAGA_TWILIO_AUTH_TOKEN"),
        (AFRICASTALKING, AfricasTalkingSms, "ORDERSAGA_AFRICASTALKING_API_KEY"),
    ],
    ids=["twilio", "africastalking"],
)
def test_an_sms_provider_reaches_the_worker_only(
    chart: Chart, values: dict[str, Any], sender: type, key: str, secret: dict[str, str]
) -> None:
    rendered = Rendered(chart, with_minimum(values))

    worker = rendered.deployment("worker")
    settings = settings_from_env(pod_env(rendered, worker, secret))
    assert settings.sms_provider == values["sms"]["provider"]
    assert isinstance(build_sms(settings), sender)
    assert key in _secret_refs(worker)
    for component in ("api", "auth"):
        assert key not in _secret_refs(rendered.deployment(component))


def test_the_chart_made_secret_holds_the_new_keys(chart: Chart) -> None:
    values = deep_merge(
        with_minimum(deep_merge(GMAIL, TWILIO)),
        {
            "secrets": {
                "existingSecret": "",
                "databaseUrl": SECRET["DATABASE_URL"],
                "jwtPrivateKeys": [fresh_pem()],
                "smtpPassword": SECRET["ORDERSAGA_SMTP_PASSWORD"],
                "twilioAuthToken": SECRET["ORDERSAGA_TWILIO_AUTH_TOKEN"],
            }
        },
    )
    data = Rendered(chart, values).get("Secret", f"{RELEASE}-secrets")["data"]
    for name in ("ORDERSAGA_SMTP_PASSWORD", "ORDERSAGA_TWILIO_AUTH_TOKEN"):
        assert base64.b64decode(data[name]).decode() == SECRET[name]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            deep_merge(
                GMAIL, {"secrets": {"existingSecret": "", "databaseUrl": "postgresql://d/x"}}
            ),
            "secrets.smtpPassword is required",
        ),
        ({"sms": {"provider": "twilio", "twilio": {"accountSid": "AC" + "0" * 32}}}, "fromNumber"),
    ],
    ids=["smtp-password", "twilio-sender"],
)
def test_missing_channel_values_fail_the_render(
    chart: Chart, values: dict[str, Any], message: str
) -> None:
    if "secrets" in values:
        values = deep_merge(values, {"secrets": {"jwtPrivateKeys": [fresh_pem()]}})
    with pytest.raises(HelmRenderError, match=message):
        chart.render(with_minimum(values), name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize(
    "values",
    [
        {"smtp": {"security": "ssl"}},
        {"sms": {"provider": "carrier-pigeon"}},
        {"sms": {"twilio": {"fromNumber": "0711 082 123"}}},
    ],
)
def test_the_values_schema_refuses_unknown_choices(chart: Chart, values: dict[str, Any]) -> None:
    with pytest.raises(HelmValuesError):
        chart.render(with_minimum(values), name=RELEASE, namespace=NAMESPACE)
