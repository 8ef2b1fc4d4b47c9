"""Prometheus metrics of a worker, merged into one ``/metrics`` on its health port.

Two sources make one page:

- The Temporal SDK's own metrics (``temporal_*``: task polling, schedule-to-
  start latency, slots, workflow and activity completions...). They come from
  the runtime's Prometheus exporter, which the SDK serves on an address of
  its own; the worker binds it to a loopback port nobody else sees and the
  health server relays it, so Kubernetes and the chart's ServiceMonitor need
  one port per pod, not two.
- ordersaga's own (``ordersaga_*``), counted by ``MetricsInterceptor``
  around each activity execution, never in workflow code, which runs again
  on every replay: activity latency by activity and outcome, compensations
  run by step, and saga outcomes by the status the saga wrote to the read
  model. They are at-least-once: an activity whose completion is lost runs
  (and counts) again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import httpx
import temporalio.worker
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

logger = logging.getLogger("ordersaga.worker.metrics")

# The activity that writes the saga's status to the read model, and the
# compensations, by their activity names (activities/*.py).
STATUS_ACTIVITY = "set_order_status"
COMPENSATIONS = frozenset({"release_stock", "refund_payment"})
NOTIFICATION_ACTIVITY = "send_notification"

# One registry per worker process (a process runs one worker).
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

ACTIVITY_DURATION = Histogram(
    "ordersaga_activity_duration_seconds",
    "Time one activity attempt took, by activity name and outcome.",
    ["activity", "outcome"],
    # Database steps take milliseconds; a charge may wait on the provider.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
SAGA_OUTCOMES = Counter(
    "ordersaga_saga_outcomes",
    "Order statuses the saga recorded: confirmed, delivered, rejected, payment_failed, cancelled.",
    ["status"],
    registry=REGISTRY,
)
COMPENSATIONS_RUN = Counter(
    "ordersaga_compensations",
    "Compensation attempts (release_stock, refund_payment), by step and outcome.",
    ["step", "outcome"],
    registry=REGISTRY,
)

NOTIFICATIONS_FAILED = Counter(
    "ordersaga_notifications_failed",
    "Notifications a channel refused for good (never retried), by the error type that "
    "names the cause: MailAuthenticationFailed, MailCertificateRejected, SmsRecipientInvalid...",
    ["reason"],
    registry=REGISTRY,
)

_SDK_SCRAPE_TIMEOUT = 5.0


class MetricsInterceptor(temporalio.worker.Interceptor):
    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _TimedActivity(next)


class _TimedActivity(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.perf_counter()
        outcome = "failed"
        refused = False
        try:
            result = await super().execute_activity(input)
            outcome = "completed"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except ApplicationError as err:
            # A non-retryable failure fails the same way on every try: for a
            # compensation that is what operators alert on (see OBSERVABILITY).
            refused = err.non_retryable
            # A refusal is final (the saga records notification.failed and
            # moves on), so each one is counted here, once.
            if name == NOTIFICATION_ACTIVITY and err.non_retryable and err.type:
                NOTIFICATIONS_FAILED.labels(err.type).inc()
            raise
        finally:
            seconds = time.perf_counter() - started
            ACTIVITY_DURATION.labels(name, outcome).observe(seconds)
            # Carries the order, workflow and request IDs (core.temporal_context).
            logger.debug("activity %s %s in %.1f ms", name, outcome, seconds * 1000)
            if name in COMPENSATIONS:
                COMPENSATIONS_RUN.labels(name, "refused" if refused else outcome).inc()
            if name == STATUS_ACTIVITY and outcome == "completed" and input.args:
                status = getattr(input.args[0], "status", None)
                if isinstance(status, str):
                    SAGA_OUTCOMES.labels(status).inc()


def free_loopback_port() -> int:
    """A port for the SDK's exporter; the exporter cannot bind port 0 and say which it got."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sdk_runtime(port: int) -> Runtime:
    """A Temporal runtime exporting the SDK's metrics on 127.0.0.1:``port``."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{port}",
                # Seconds, as Prometheus names and ordersaga's own histograms use.
                durations_as_seconds=True,
            )
        )
    )


class MetricsPage:
    """What ``GET /metrics`` on the health port answers: ours, then the SDK's."""

    def __init__(self, sdk_port: int | None) -> None:
        self.sdk_port = sdk_port

    async def render(self) -> bytes:
        page = generate_latest(REGISTRY)
        if self.sdk_port is None:
            return page
        try:
            async with httpx.AsyncClient(timeout=_SDK_SCRAPE_TIMEOUT) as http:
                sdk = await http.get(f"http://127.0.0.1:{self.sdk_port}/metrics")
                sdk.raise_for_status()
        except httpx.HTTPError as err:
            # Our own metrics are still worth a scrape.
            logger.warning("the Temporal SDK's metrics are unavailable: %s", type(err).__name__)
            return page
        return page + sdk.content
