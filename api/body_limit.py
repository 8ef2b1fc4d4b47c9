"""The request body limit: 413 for bodies over the configured size.

One limit for the whole app (``max_body_bytes``, 1 MiB), and a route that
takes larger bodies by design (an image upload) names its own with a
``RouteBodyLimit``: that route, and only it, may take that much.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem


@dataclass(frozen=True)
class RouteBodyLimit:
    """Bodies of ``method`` requests to paths matching ``path`` (whole) may be ``max_bytes``."""

    method: str
    path: str  # a regular expression matched against the whole request path
    max_bytes: int

    def applies(self, scope: Scope) -> bool:
        # re keeps compiled patterns cached; there are only a few of these.
        return scope["method"] == self.method and re.fullmatch(self.path, scope["path"]) is not None


class BodySizeLimit:
    """Answer 413 to request bodies over ``max_bytes``, declared or streamed.

    Checked before the route reads the body, so an oversized upload is never
    buffered whole. ``routes`` lists the routes with a limit of their own.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, routes: Sequence[RouteBodyLimit] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = tuple(routes)

    def limit_for(self, scope: Scope) -> int:
        for route in self.routes:
            if route.applies(scope):
                return route.max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await self._reject(scope, receive, send, max_bytes)
                return

        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _BodyTooLarge(max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._reject(scope, receive, send, max_bytes)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        response = problem(
            413, f"request body is larger than {max_bytes} bytes", code="body-too-large"
        )
        await response(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reader lets it through as it is
    # (anything else it turns into "400 error parsing the body"); the error
    # handler or BodySizeLimit itself then answers 413.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than {max_bytes} bytes")
        self.code = "body-too-large"
