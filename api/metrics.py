"""Prometheus metrics of an API process, served at ``GET /metrics`` on a port of its own.

The page shows business counters (orders accepted) and process internals, so
it is never on the public port: ``metrics_server`` serves it on
``ORDERSAGA_API_METRICS_PORT`` (``ORDERSAGA_AUTH_METRICS_PORT`` for the auth
service), which only Prometheus is meant to reach, as the worker's is.

Requests are counted and timed by route *template* (``/orders/{order_id}``),
never by raw path: a path per order would give Prometheus a time series per
order. Paths no route matches share the label ``unmatched``.

An order is counted as accepted when ``POST /orders`` answers 202 or 200
without ``Idempotent-Replayed``: that is the HTTP contract's own meaning of
"a new order was taken", so no route has to remember to count.

Each app has its own registry (tests build many apps in one process, and
their numbers must not mix); it also carries the process and Python
collectors that prometheus-client offers.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.probe_server import Answer, ProbeServer

UNMATCHED = "unmatched"
# Seconds; from a cached catalog read to a checkout waiting (Prefer: wait) for its saga.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "ordersaga_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ordersaga_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.orders_accepted = Counter(
            "ordersaga_orders_accepted",
            "New orders taken by POST /orders (idempotent replays not counted).",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float, replayed: bool) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if method == "POST" and route == "/orders" and status in (200, 202) and not replayed:
            self.orders_accepted.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI: counts every answer, errors that escape as 500 included."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        replayed = False

        async def observe_send(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                replayed = (b"idempotent-replayed", b"true") in message.get("headers", [])
            await send(message)

        try:
            await self.app(scope, receive, observe_send)
        finally:
            # Starlette records the matched route in the scope while routing.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe(
                scope["method"], route, status, time.perf_counter() - started, replayed
            )


def metrics_server(metrics: ApiMetrics, *, host: str, port: int) -> ProbeServer:
    """``GET /metrics`` of this app on ``host:port``, apart from its public port."""

    async def page() -> Answer:
        return Answer(200, metrics.exposition(), CONTENT_TYPE_LATEST)

    return ProbeServer({"/metrics": page}, host=host, port=port, name="metrics endpoint")
