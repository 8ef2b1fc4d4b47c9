"""The worker's liveness and readiness endpoints, for people and Kubernetes probes.

Served by the shared probe server (core/probe_server.py): ``GET /healthz``
(the process answers) and ``GET /readyz`` (the checks it is given pass; 503
with the failing ones otherwise), both JSON, and ``GET /metrics`` in
Prometheus' text format when given a page to render.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from core.probe_server import PROMETHEUS_CONTENT_TYPE, Answer, Handler, ProbeServer

# A readiness check returns None when fine, or a short reason when not.
Check = Callable[[], Awaitable[str | None]]
# Renders the Prometheus text exposition.
MetricsRenderer = Callable[[], Awaitable[bytes]]

_CHECK_TIMEOUT = 3.0


class HealthServer(ProbeServer):
    def __init__(
        self,
        checks: dict[str, Check],
        *,
        host: str,
        port: int,
        metrics: MetricsRenderer | None = None,
    ) -> None:
        self._checks = checks
        routes: dict[str, Handler] = {"/healthz": self._healthz, "/readyz": self._readyz}
        if metrics is not None:
            routes["/metrics"] = _metrics_handler(metrics)
        super().__init__(routes, host=host, port=port, name="worker health endpoint")

    async def _healthz(self) -> Answer:
        return Answer.json(200, {"status": "ok"})

    async def _readyz(self) -> Answer:
        results = await asyncio.gather(*(self._run(check) for check in self._checks.values()))
        failing = {name: r for name, r in zip(self._checks, results, strict=True) if r}
        checks = {name: failing.get(name, "ok") for name in self._checks}
        if failing:
            return Answer.json(503, {"status": "not ready", "checks": checks})
        return Answer.json(200, {"status": "ready", "checks": checks})

    async def _run(self, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), _CHECK_TIMEOUT)
        except TimeoutError:
            return "timed out"
        except Exception as err:  # any failure of a check means "not ready"
            return f"unreachable: {type(err).__name__}"


def _metrics_handler(render: MetricsRenderer) -> Handler:
    async def metrics() -> Answer:
        return Answer(200, await render(), PROMETHEUS_CONTENT_TYPE)

    return metrics
