"""The consistency rules a process checks on its settings at start (core/settings.py).

Each raises ``ValueError`` naming the settings to fix (pydantic reports it as
a validation error of ``Settings``), never their values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

# The development defaults in core/settings.py are public (they are in the
# repository), so a process that is not in dev mode must never run with them.
DEV_ADMIN_PASSWORD = "change-me-admin"
# The domain of the example addresses in core/settings.py. Mail from it
# bounces and nobody reads an admin account there, so a deployment must name
# its own.
PLACEHOLDER_MAIL_DOMAIN = "ordersaga.dev"
# Where a plain-text SMTP relay is acceptable outside dev mode: a sidecar on
# the same machine (or pod), which nothing on the network can read.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def mail_and_sms_complete(settings: Settings) -> None:
    # A half-configured channel fails the rollout, not every message a day later.
    if (settings.smtp_username is None) != (settings.smtp_password is None):
        raise ValueError("ORDERSAGA_SMTP_USERNAME and ORDERSAGA_SMTP_PASSWORD go together")
    if (
        not settings.is_dev
        and settings.smtp_security_mode == "none"
        and settings.smtp_host.strip().lower()
        not in _LOCAL_HOSTS | {h.strip().lower() for h in settings.smtp_local_hosts}
    ):
        raise ValueError(
            "ORDERSAGA_SMTP_SECURITY=none sends mail (and any SMTP password) in clear "
            "text; outside dev mode it is only allowed for a relay on this machine "
            "(or one named in ORDERSAGA_SMTP_LOCAL_HOSTS)"
        )
    needed: dict[str, object] = {}
    if settings.sms_provider == "twilio":
        needed = {
            "ORDERSAGA_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "ORDERSAGA_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "ORDERSAGA_TWILIO_FROM_NUMBER (or ORDERSAGA_TWILIO_MESSAGING_SERVICE_SID)": (
                settings.twilio_from_number or settings.twilio_messaging_service_sid
            ),
        }
    elif settings.sms_provider == "africastalking":
        needed = {
            "ORDERSAGA_AFRICASTALKING_USERNAME": settings.africastalking_username,
            "ORDERSAGA_AFRICASTALKING_API_KEY": settings.africastalking_api_key,
        }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise ValueError(
            f"ORDERSAGA_SMS_PROVIDER={settings.sms_provider} needs " + ", ".join(missing)
        )


def client_certificate_and_key_together(settings: Settings) -> None:
    # A CA alone (server-only TLS) is fine; half a client identity is not.
    if (settings.temporal_tls_client_cert_path is None) != (
        settings.temporal_tls_client_key_path is None
    ):
        raise ValueError(
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together "
            "(mTLS); give both or neither"
        )


def production_ready(settings: Settings) -> None:
    """Outside dev mode: every secret given, no public default, no placeholder."""
    missing = []
    if not settings.database_url:
        missing.append("DATABASE_URL")
    if not settings.temporal_address:
        missing.append("TEMPORAL_ADDRESS")
    if not (settings.jwt_private_keys or settings.jwt_public_keys or settings.jwks_url):
        missing.append(
            "ORDERSAGA_JWT_PRIVATE_KEYS (or ORDERSAGA_JWT_PUBLIC_KEYS / ORDERSAGA_JWKS_URL)"
        )
    if (
        settings.admin_password is not None
        and settings.admin_password.get_secret_value() == DEV_ADMIN_PASSWORD
    ):
        missing.append("ORDERSAGA_ADMIN_PASSWORD (the development default is not allowed)")
    for name, address in (
        ("ORDERSAGA_ADMIN_EMAIL", settings.admin_email),
        ("ORDERSAGA_MAIL_FROM", settings.mail_from),
    ):
        if address.rpartition("@")[2].strip().lower() == PLACEHOLDER_MAIL_DOMAIN:
            missing.append(f"{name} (an address at {PLACEHOLDER_MAIL_DOMAIN} is a placeholder)")
    if missing:
        raise ValueError(
            "outside dev mode these settings must be given real values: " + ", ".join(missing)
        )
    if settings.worker_graceful_shutdown_seconds < settings.payment_deadline_seconds:
        raise ValueError(
            "ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS must be at least "
            "ORDERSAGA_PAYMENT_DEADLINE_SECONDS outside dev mode, so a stopping "
            "worker never cuts a charge in flight"
        )
