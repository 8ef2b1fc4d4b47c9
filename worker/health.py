"""The worker's liveness and readiness endpoints, for people and Kubernetes probes.

A worker has no web framework, so this is a tiny HTTP/1.1 server on asyncio
streams: ``GET /healthz`` (the process answers) and ``GET /readyz`` (the
checks it is given pass; 503 with the failing ones otherwise), both JSON, and
``GET /metrics`` in Prometheus' text format when given a page to render. The
connection is closed after each answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("ordersaga.worker.health")

# A readiness check returns None when fine, or a short reason when not.
Check = Callable[[], Awaitable[str | None]]
# Renders the Prometheus text exposition.
MetricsRenderer = Callable[[], Awaitable[bytes]]
_METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_READ_TIMEOUT = 5.0
_CHECK_TIMEOUT = 3.0


class HealthServer:
    def __init__(
        self,
        checks: dict[str, Check],
        *,
        host: str,
        port: int,
        metrics: MetricsRenderer | None = None,
    ) -> None:
        self._checks = checks
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the health server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        logger.info("worker health endpoint on http://%s:%d", self._host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
            # Drain the headers; nothing in them matters here.
            while (await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            line = request_line.decode("latin-1")
            content_type = "application/json"
            if self._metrics is not None and line.split()[:2] == ["GET", "/metrics"]:
                status, payload = 200, await self._metrics()
                content_type = _METRICS_CONTENT_TYPE
            else:
                status, body = await self._answer(line)
                payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass  # a probe that went away or spoke nonsense: nothing to answer
        finally:
            writer.close()

    async def _answer(self, request_line: str) -> tuple[int, dict[str, object]]:
        parts = request_line.split()
        if len(parts) < 2:
            return 405, {"status": "error", "detail": "not an HTTP request"}
        method, path = parts[0], parts[1].split("?", 1)[0]
        if path not in ("/healthz", "/readyz"):
            return 404, {"status": "error", "detail": f"no such endpoint: {path}"}
        if method != "GET":
            return 405, {"status": "error", "detail": f"{method} is not allowed"}
        if path == "/healthz":
            return 200, {"status": "ok"}
        results = await asyncio.gather(*(self._run(check) for check in self._checks.values()))
        failing = {name: r for name, r in zip(self._checks, results, strict=True) if r}
        checks = {name: failing.get(name, "ok") for name in self._checks}
        if failing:
            return 503, {"status": "not ready", "checks": checks}
        return 200, {"status": "ready", "checks": checks}

    async def _run(self, check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), _CHECK_TIMEOUT)
        except TimeoutError:
            return "timed out"
        except Exception as err:  # any failure of a check means "not ready"
            return f"unreachable: {type(err).__name__}"
