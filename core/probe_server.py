"""A tiny HTTP/1.1 server on asyncio streams, for probes and Prometheus.

The worker has no web framework, and the API's metrics must not be on its
public port, so both serve their side endpoints with this: a fixed set of
``GET`` paths, each answered by an async handler, one answer per connection.
Nothing a client sends is ever written back: an unknown path or method gets
a fixed body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

logger = logging.getLogger("ordersaga.probe_server")

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, body: object) -> Answer:
        return cls(status, json.dumps(body).encode())


Handler = Callable[[], Awaitable[Answer]]

_NOT_FOUND = Answer.json(404, {"status": "error", "detail": "no such endpoint"})
_NOT_ALLOWED = Answer.json(405, {"status": "error", "detail": "only GET is allowed"})
_NOT_HTTP = Answer.json(405, {"status": "error", "detail": "not an HTTP request"})


class ProbeServer:
    """Serves ``routes`` (path -> handler) to ``GET`` on ``host:port``."""

    def __init__(self, routes: Mapping[str, Handler], *, host: str, port: int, name: str) -> None:
        self._routes = dict(routes)
        self._host = host
        self._port = port
        self._name = name
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"the {self._name} server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        logger.info("%s on http://%s:%d", self._name, self._host, self.port)

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
            answer = await self._answer(request_line.decode("latin-1"))
            writer.write(
                f"HTTP/1.1 {answer.status} {_REASONS[answer.status]}\r\n"
                f"Content-Type: {answer.content_type}\r\n"
                f"Content-Length: {len(answer.body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + answer.body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass  # a probe that went away or spoke nonsense: nothing to answer
        finally:
            writer.close()

    async def _answer(self, request_line: str) -> Answer:
        parts = request_line.split()
        if len(parts) < 2:
            return _NOT_HTTP
        method, path = parts[0], parts[1].split("?", 1)[0]
        handler = self._routes.get(path)
        if handler is None:
            return _NOT_FOUND
        if method != "GET":
            return _NOT_ALLOWED
        return await handler()
