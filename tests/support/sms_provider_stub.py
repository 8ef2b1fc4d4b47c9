"""A local HTTP server standing in for an SMS provider's documented send endpoint.

It records each request (path, headers, form fields) and answers with what the
test scripted, so the providers' real SDKs run unchanged against it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class ProviderStub:
    """``answers`` are (status, JSON body), used in turn; the last one repeats."""

    answers: list[tuple[int, Any]]
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""

    def next_answer(self) -> tuple[int, Any]:
        index = min(len(self.seen) - 1, len(self.answers) - 1)
        return self.answers[index]


def _handler(stub: ProviderStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            fields = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            stub.seen.append(
                Seen(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    {k: v[0] for k, v in fields.items()},
                )
            )
            status, body = stub.next_answer()
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows what matters."""

    return Handler


@contextmanager
def provider_stub(*answers: tuple[int, Any]) -> Iterator[ProviderStub]:
    stub = ProviderStub(list(answers))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll, so shutting the stub down does not cost half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
