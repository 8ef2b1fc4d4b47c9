"""A request ID for every API call: taken from ``X-Request-ID`` or made up, and echoed.

The ID is set in ``core.log_context`` for the request's lifetime, so every log
line the request causes carries it, and the Temporal client interceptor
(``core.temporal_context``) hands it on to the saga and its activities. A
caller's ID is used only if it is short and plain (letters, digits, ``-``,
``_``, ``.``, ``:``), so a header cannot forge log fields or lines.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import log_context

HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _ACCEPTABLE.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware), so the context variable reaches the route's task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        # order_id/workflow_id start empty: the Temporal client interceptor names
        # them once the request reaches a saga.
        with log_context.bound(request_id=rid, order_id=None, workflow_id=None):
            await self.app(scope, receive, send_with_id)
