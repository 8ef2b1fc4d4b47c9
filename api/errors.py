"""One error shape for every route: RFC 9457 problem details.

Every error answer is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``, a list naming
each failing field. Handlers never echo request bodies, so a password or a
card token sent by a client can never come back in an error.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemError(HTTPException):
    """An HTTP error with a machine-readable ``code`` (the problem ``type``)."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code
        self.extra = extra or {}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": code or _TITLES.get(status, "error").lower().replace(" ", "-"),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "items", 0, "quantity") -> "items[0].quantity"; the source
    # ("body", "query", ...) stays in "in".
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(loc[0] if loc else "body")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field(err.get("loc", ())),
            "in": str(err.get("loc", ("body",))[0]),
            "message": err.get("msg", ""),
        }
        for err in exc.errors()
    ]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem(422, f"invalid request: {names}", code="validation-error", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None)
    extra = getattr(exc, "extra", {})
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route or resource at {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, detail, code=code, headers=headers, **extra)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # The exception is logged by the server; the client learns nothing internal.
    return problem(500, "internal error", code="internal-error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)


class BodySizeLimit:
    """Answer 413 to request bodies over ``max_bytes``, declared or streamed.

    Checked before the route reads the body, so an oversized upload is never
    buffered whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, receive, send)
                return

        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, f"request body is larger than {self.max_bytes} bytes", code="body-too-large"
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass
