"""OpenTelemetry: one checkout is one trace, from the HTTP call through every activity.

The processes run as deployed with an OTLP endpoint set (so tracing is on),
but spans go to an in-memory exporter installed first: ``core.tracing.setup``
keeps a tracer provider that is already there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from core import tracing
from core.db import SessionFactory
from core.settings import Settings
from tests.support.observability_support import (
    Processes,
    place_order,
    process_settings,
    running_processes,
)
from tests.support.polling import poll_until

pytestmark = pytest.mark.timeout(180)

# The saga's steps up to the pivot, as the SDK's interceptor names their spans.
# A checkout that waits (Prefer: wait) starts the saga with its outcome update.
START = "StartUpdateWithStartWorkflow:OrderWorkflow"
SAGA_SPANS = {
    START,
    "HandleUpdate:outcome",
    "RunWorkflow:OrderWorkflow",
    "RunActivity:record_order",
    "RunActivity:reserve_stock",
    "RunActivity:charge_payment",
    "RunActivity:set_order_status",
}


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_tracing_is_off_unless_an_otlp_endpoint_is_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not tracing.enabled(settings)
    assert tracing.temporal_interceptor(settings) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    from_env = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_env.otlp_endpoint == "http://collector:4318"
    assert tracing.temporal_interceptor(from_env) is not None


@pytest.fixture(scope="module")
async def processes(
    spans: InMemorySpanExporter,
    database_url: str,
    signing_key_pem: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Processes]:
    settings = process_settings(
        database_url,
        signing_key_pem,
        tmp_path_factory.mktemp("tracing"),
        # Never reached: the in-memory exporter above is kept.
        otlp_endpoint="http://127.0.0.1:9",
    )
    address = temporal_dev_server.client.service_client.config.target_host
    async with running_processes(settings, address, database_url) as running:
        yield running


async def _trace_of_checkout(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans sharing the POST /orders server span's trace, once the saga's are all in."""

    # An activity's span ends just after it answers.
    async def complete() -> list[ReadableSpan] | None:
        finished = exporter.get_finished_spans()
        http = [s for s in finished if s.name == "POST /orders" and s.parent is None]
        if http:
            trace_id = http[-1].context.trace_id
            same = [s for s in finished if s.context.trace_id == trace_id]
            if SAGA_SPANS <= {s.name for s in same}:
                return same
        return None

    return await poll_until(complete, f"the checkout's trace holding {sorted(SAGA_SPANS)}")


async def test_one_checkout_is_one_trace_from_http_to_every_activity(
    processes: Processes, sessions: SessionFactory, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    response = await place_order(processes, sessions)
    assert response.json()["status"] == "confirmed"

    checkout = await _trace_of_checkout(spans)

    names = {s.name for s in checkout}
    assert SAGA_SPANS <= names
    # The workflow start is a child of the HTTP request, not a new root.
    (http,) = [s for s in checkout if s.name == "POST /orders" and s.parent is None]
    (start,) = [s for s in checkout if s.name == START]
    assert start.parent is not None
    assert start.parent.trace_id == http.context.trace_id
    # Health probes are not traced.
    await processes.api.get("/healthz")
    assert not [s for s in spans.get_finished_spans() if "/healthz" in s.name]
