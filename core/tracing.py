"""OpenTelemetry tracing: off unless an OTLP endpoint is set.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``ORDERSAGA_OTLP_ENDPOINT``) set, the
API's FastAPI instrumentation opens a span per request, and the Temporal
SDK's ``TracingInterceptor`` (on the client, hence on the worker built on it)
carries that trace through the workflow start into the workflow and every
activity: one checkout is one trace. Spans leave in batches over OTLP/HTTP.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.contrib.opentelemetry import TracingInterceptor

# Probes and scrapes would be most of the spans and none of the interest.
_UNTRACED_URLS = "healthz,readyz,metrics"


def enabled(settings: Settings) -> bool:
    return bool(settings.otlp_endpoint)


def setup(settings: Settings, service: str) -> None:
    """Install the process's tracer provider, once, when tracing is on.

    A provider already installed (by a host program, or a test's in-memory
    exporter) is kept: OpenTelemetry allows one per process.
    """
    if not enabled(settings):
        return
    # Imported only when tracing is on: processes without it load none of OpenTelemetry.
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    assert settings.otlp_endpoint is not None
    # OTEL_SERVICE_NAME, when set, names the service as OpenTelemetry defines.
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def temporal_interceptor(settings: Settings) -> TracingInterceptor | None:
    """The SDK's tracing interceptor for a client (and its workers), if tracing is on."""
    if not enabled(settings):
        return None
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor()


def instrument_app(app: FastAPI, settings: Settings) -> None:
    """A server span per request (probes and /metrics excepted), if tracing is on."""
    if not enabled(settings):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=_UNTRACED_URLS)
