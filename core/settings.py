"""Process settings, read from the environment (and an optional ``.env``).

The project's own settings carry the ``ORDERSAGA_`` prefix. The connection
settings that every Temporal and PostgreSQL tool already knows
(``DATABASE_URL``, ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``) are read under their usual names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import settings_checks

# The dev server's Web UI when ``ordersaga dev`` has not said otherwise.
DEV_TEMPORAL_UI_URL = "http://127.0.0.1:8233"


def _env(name: str) -> AliasChoices:
    """Accept both the ``ORDERSAGA_`` name and the tool-wide name."""
    return AliasChoices(f"ORDERSAGA_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORDERSAGA_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # "dev" is the embedded stack; anything else is a deployment and must be
    # given real secrets.
    mode: Literal["dev", "production"] = "dev"
    data_dir: Path = Path(".ordersaga")
    log_level: str = "INFO"
    # "json" (one object per line, for log collectors) or "text"; unset means
    # text in dev mode and JSON everywhere else.
    log_format: Literal["text", "json"] | None = None
    # OpenTelemetry tracing is off unless an OTLP/HTTP collector is named
    # (e.g. http://otel-collector:4318); spans go to <endpoint>/v1/traces.
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ORDERSAGA_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    # PostgreSQL. Unset means: use the embedded server of the data directory.
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    # Connections each process may hold: a pool of db_pool_size kept open,
    # plus up to db_max_overflow opened under load (docs/DEPLOY.md has the
    # budget per tier). Behind PgBouncer in transaction mode, turn
    # db_prepared_statements off: psycopg 3 would prepare statements on one
    # server connection and run them on another.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_prepared_statements: bool = True

    # Temporal. Unset address means: use the dev server of the data directory.
    temporal_address: str | None = Field(default=None, validation_alias=_env("TEMPORAL_ADDRESS"))
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    temporal_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("TEMPORAL_API_KEY")
    )
    temporal_tls: bool = Field(default=False, validation_alias=_env("TEMPORAL_TLS"))
    # The Temporal Web UI, for the links the progress API gives each order's
    # workflow. Unset: the dev server's UI in dev mode, no link elsewhere.
    temporal_ui_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ORDERSAGA_TEMPORAL_UI_URL")
    )
    temporal_tls_client_cert_path: Path | None = Field(
        default=None, validation_alias=_env("TEMPORAL_TLS_CLIENT_CERT_PATH")
    )
    temporal_tls_client_key_path: Path | None = Field(
        default=None, validation_alias=_env("TEMPORAL_TLS_CLIENT_KEY_PATH")
    )
    temporal_tls_server_ca_cert_path: Path | None = Field(
        default=None, validation_alias=_env("TEMPORAL_TLS_SERVER_CA_CERT_PATH")
    )
    task_queue: str = "orders"

    # The main API also serves the auth routes (the dev default). Deployments
    # that run `ordersaga auth` separately set this to false.
    serve_auth: bool = True

    # Worker concurrency limits, and the port of its health/metrics endpoint
    # (0 turns the endpoint off).
    worker_health_port: int = 0
    worker_max_concurrent_activities: int = 100
    worker_max_concurrent_workflow_tasks: int = 100
    # Workflows kept in a worker's memory between their tasks. A confirmed
    # saga then waits days for shipping; caching thousands of them only
    # costs memory (the SDK's default is 1000), and one evicted is rebuilt
    # by replaying its short history when its next update arrives.
    worker_max_cached_workflows: int = Field(default=200, ge=0)
    # Run workflow code in the SDK's sandbox, which re-imports the workflow
    # module for every run and refuses non-deterministic calls (time, random,
    # I/O). Off saves the re-import (docs/PERFORMANCE.md has the figures) at
    # the price of that check at run time; the tests and the replay suite
    # always run the saga sandboxed, whatever this says.
    worker_workflow_sandbox: bool = True
    # On SIGTERM the worker stops polling and gives activities in flight this
    # long to finish; what is still running then is cancelled and retried by
    # another worker. Outside dev mode it may not be shorter than the payment
    # deadline, so a charge in flight is never cut off by a rollout; whatever
    # stops the process (Kubernetes' terminationGracePeriodSeconds, compose's
    # stop_grace_period) must allow this plus a margin.
    worker_graceful_shutdown_seconds: float = Field(default=90.0, ge=0)
    # Reaching PostgreSQL and Temporal at start: this many attempts, waiting
    # 1 s, 2 s, 4 s... (at most 10 s) between them, before exiting with 1.
    worker_connect_attempts: int = Field(default=8, ge=1)

    # JWT. Private keys are PEM texts (EdDSA/Ed25519 or ES256), newest first
    # signs, every one verifies. Services that only verify may instead be given
    # the auth service's JWKS URL or the public keys.
    jwt_private_keys: list[SecretStr] = Field(default_factory=list)
    jwt_public_keys: list[str] = Field(default_factory=list)
    jwks_url: str | None = None
    jwks_cache_seconds: int = 300
    jwt_issuer: str = "ordersaga-auth"
    jwt_audience: str = "ordersaga"
    access_token_ttl_seconds: int = 3600

    # Login throttling (api/auth/throttle.py), in PostgreSQL so every replica
    # counts alike. Failures from one client address on one account start
    # that pair's back-off after login_max_failures, counted over
    # login_failure_window_seconds (a success from there clears them): it
    # waits login_backoff_base_seconds, doubling with each further failure, up
    # to login_lockout_seconds. The same back-off applies past a ceiling per
    # account (all addresses) and per address (all accounts), counted over
    # login_ceiling_window_seconds.
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=24 * 3600, gt=0)
    login_backoff_base_seconds: int = Field(default=30, gt=0)
    login_lockout_seconds: int = Field(default=15 * 60, gt=0)
    login_account_max_failures: int = Field(default=50, ge=1)
    login_address_max_failures: int = Field(default=20, ge=1)
    login_ceiling_window_seconds: int = Field(default=3600, gt=0)

    # Account recovery and verification (api/auth/recovery.py). Links in
    # the mails point at public_url (the storefront): <public_url>/reset-password
    # ?token=... and <public_url>/verify-email?token=...
    public_url: str = "http://localhost:8000"
    password_reset_ttl_seconds: int = Field(default=30 * 60, gt=0)
    email_verification_ttl_seconds: int = Field(default=3 * 24 * 3600, gt=0)
    # Unset: off in dev mode, on in a deployment. On, checkout refuses an
    # account whose email is not verified (403 email-not-verified), and
    # registration answers 202 alike for new and taken emails.
    require_verified_email: bool | None = None
    # Requests that mail a token or make an account, counted in PostgreSQL
    # over account_request_window_seconds: per email and per client address
    # for a reset, per address for registration; past that, 429.
    password_reset_max_per_email: int = Field(default=3, ge=1)
    password_reset_max_per_address: int = Field(default=20, ge=1)
    register_max_per_address: int = Field(default=10, ge=1)
    account_request_window_seconds: int = Field(default=3600, gt=0)

    # Checkout rate limit per user (a token bucket in each API process's
    # memory): this many checkouts per window, as a burst or spread; 0 = off.
    checkout_rate_limit: int = Field(default=30, ge=0)
    checkout_rate_window_seconds: float = Field(default=60.0, gt=0)

    # How long the API waits for a worker to accept a cancel, ship or deliver
    # update before it answers 503 with Retry-After (no worker is polling).
    update_accept_timeout_seconds: float = Field(default=10.0, gt=0)

    # The seeded administrator. Dev mode generates a password when unset.
    admin_email: str = "admin@ordersaga.dev"
    admin_password: SecretStr | None = None

    # Payments: the provider must answer one call within provider_timeout, and
    # the whole charge (retries included) must finish within payment_deadline.
    payment_provider: Literal["simulator"] = "simulator"
    payment_provider_timeout_seconds: float = 5.0
    payment_deadline_seconds: float = 60.0
    # An order that is not final and made no progress for this long is
    # "stuck" in the admin order list (docs/OBSERVABILITY.md has the rule).
    stuck_after_seconds: int = Field(default=60, ge=1)

    # Notifications. Email goes to one SMTP relay: the dev sink by default,
    # a real relay (port 587 with starttls, or 465 with tls) in a deployment.
    # Unset security means none in dev mode and starttls otherwise; outside
    # dev mode none is refused unless the relay is on this machine.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: Literal["starttls", "tls", "none"] | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # A private CA's bundle (PEM) to verify the relay with, instead of the system's.
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # Hosts besides loopback that may take clear-text SMTP outside dev mode:
    # a mail catcher you run next to the app (compose's mailpit), never a
    # relay across a network you do not own. JSON list, e.g. ["mailpit"].
    smtp_local_hosts: list[str] = Field(default_factory=list)
    mail_from: str = "orders@ordersaga.dev"
    # Text messages: "log" writes one masked log line (dev); "twilio" and
    # "africastalking" send through that provider with the credentials below.
    sms_provider: Literal["log", "twilio", "africastalking"] = "log"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    # Either a sending number (E.164) or a Messaging Service (MG...).
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    africastalking_username: str | None = None
    africastalking_api_key: SecretStr | None = None
    africastalking_sender_id: str | None = None

    # HTTP.
    api_port: int = 8000
    auth_port: int = 8001
    # Prometheus /metrics of `ordersaga api` and `ordersaga auth`, on ports of
    # their own (never the public one: the page shows business counters);
    # bound on the same host as the public port. 0 serves no metrics page.
    api_metrics_port: int = Field(default=9100, ge=0, le=65535)
    auth_metrics_port: int = Field(default=9101, ge=0, le=65535)
    max_body_bytes: int = 1024 * 1024

    @property
    def is_dev(self) -> bool:
        return self.mode == "dev"

    @property
    def temporal_ui_base(self) -> str | None:
        """The Temporal Web UI's base URL, without a trailing slash; None for no links."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return DEV_TEMPORAL_UI_URL if self.is_dev else None

    @property
    def verified_email_required(self) -> bool:
        if self.require_verified_email is not None:
            return self.require_verified_email
        return not self.is_dev

    @property
    def smtp_security_mode(self) -> Literal["starttls", "tls", "none"]:
        if self.smtp_security is not None:
            return self.smtp_security
        return "none" if self.is_dev else "starttls"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        # Checked at start (every process reads its settings first), so a
        # half-configured deployment fails its rollout, not its first order.
        settings_checks.mail_and_sms_complete(self)
        settings_checks.client_certificate_and_key_together(self)
        if not self.is_dev:
            settings_checks.production_ready(self)
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
