"""One error shape for every route: RFC 9457 problem details.

Every error answer is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``, a list naming
each failing field by location and machine-readable ``type``.

No error body reflects what the client sent (no path, query, header or body
text, not even a refused key's name): a password, a card token or markup
can never come back in an error. Details are fixed text written here or in
the routes; validation errors are rendered by the rules above ``_message``
(tests/test_error_reflection.py sends a marker to every route to prove it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.models import Base

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


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error answer."""

    type: str = Field(description="machine-readable problem code")
    title: str
    status: int
    detail: str = Field(description="what went wrong; never echoes submitted values")


class FieldProblem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    field: str = Field(description="the failing field, e.g. items[0].quantity")
    in_: str = Field(alias="in", description="body, query, path or header")
    type: str = Field(description="the validation error's machine-readable type, e.g. missing")
    message: str = Field(description="fixed text per type; never quotes the submitted value")


class ValidationProblem(Problem):
    """A 422: each failing field named in ``errors``."""

    errors: list[FieldProblem]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route, documenting its error answers as problems."""
    return {
        status: {
            "model": ValidationProblem if status == 422 else Problem,
            "description": _TITLES.get(status, "Error"),
        }
        for status in statuses
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


def _field(loc: Sequence[Any], declared: frozenset[str]) -> str:
    # ("body", "items", 0, "quantity") -> "items[0].quantity"; the source
    # ("body", "query", ...) stays in "in". A name the app does not declare
    # came from the client (a key refused as extra, a dict key): the field
    # named is then its parent, so the client's key is never sent back.
    parts = list(loc[1:]) if loc and loc[0] in _SOURCES else list(loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.lower() in declared:
            out += f".{part}" if out else part
        else:
            break
    return out or str(loc[0] if loc and loc[0] in _SOURCES else "body")


_SOURCES = ("body", "query", "path", "header", "cookie")

# A validation message is sent only when nothing in it can come from the
# request: pydantic's own text is kept when its context holds numbers and the
# schema's own words (a pattern, the expected values), and a validator's
# ValueError only when raised by ordersaga's code (whose messages are fixed
# text); anything else is replaced by the fixed text of its type. Library
# messages are not trusted: uuid's, email-validator's and datetime's quote
# what they were given.
_SAFE_CONTEXT = {"pattern", "expected"}
_OUR_PACKAGES = ("api.", "core.", "activities.", "workflows.", "worker.")
_FIXED_MESSAGES = {
    "uuid_parsing": "Input should be a valid UUID",
    "uuid_type": "Input should be a valid UUID",
    "json_invalid": "body is not valid JSON",
    "value_error": "value is not accepted",
}
_GENERIC_MESSAGE = "value is not valid"
# email-validator's reasons, reduced to fixed text (some quote the address).
_EMAIL_REASONS = (
    ("special-use or reserved", "the domain is special-use or reserved and cannot receive mail"),
)


def _raised_by_us(error: object) -> bool:
    tb = getattr(error, "__traceback__", None)
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_OUR_PACKAGES)


def _message(err: dict[str, Any]) -> str:
    kind = str(err.get("type", ""))
    context: dict[str, Any] = err.get("ctx") or {}
    error = context.get("error")
    if kind in ("value_error", "assertion_error") and isinstance(error, Exception):
        return str(error) if _raised_by_us(error) else _FIXED_MESSAGES["value_error"]
    if kind == "value_error" and "reason" in context:
        # EmailStr: pydantic's "value is not a valid email address: {reason}".
        reason = str(context["reason"])
        fixed = next((text for words, text in _EMAIL_REASONS if words in reason), None)
        return fixed or "value is not a valid email address"
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    safe = all(
        key in _SAFE_CONTEXT or (isinstance(value, int | float) and not isinstance(value, bool))
        for key, value in context.items()
    )
    return str(err.get("msg", "")) if safe else _GENERIC_MESSAGE


def _field_error(err: dict[str, Any], declared: frozenset[str]) -> dict[str, str]:
    loc = err.get("loc", ("body",))
    if err.get("type") == "json_invalid":
        # The location is a character offset into the body, not a field.
        loc = ("body",)
    return {
        "field": _field(loc, declared),
        "in": str(loc[0]) if loc and loc[0] in _SOURCES else "body",
        "type": str(err.get("type", "")),
        "message": _message(err),
    }


def _declared_names(app: FastAPI) -> frozenset[str]:
    """The app's own vocabulary, lower-cased: every field and parameter name its
    OpenAPI document declares, and every column of its tables (so a refused
    ``token_version`` is still named: it is our word, not the client's)."""
    cached: frozenset[str] | None = getattr(app.state, "declared_names", None)
    if cached is not None:
        return cached
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(str(key) for key in properties)
            if node.get("in") in _SOURCES and isinstance(node.get("name"), str):
                names.add(node["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(app.openapi())
    names.update(column.name for table in Base.metadata.tables.values() for column in table.columns)
    declared = frozenset(name.lower() for name in names)
    app.state.declared_names = declared
    return declared


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    declared = _declared_names(request.app)
    errors = [_field_error(err, declared) for err in exc.errors()]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem(422, f"invalid request: {names}", code="validation-error", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers a body that is not UTF-8 with a bare 400; JSON must
        # be UTF-8 (RFC 8259), so it is invalid JSON like any other: a 422.
        return _invalid_json()
    code = getattr(exc, "code", None)
    extra = getattr(exc, "extra", {})
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 404 and detail == "Not Found":
        # Starlette's "no route matched"; the path is not repeated back.
        detail = "no route matches this path"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = "this path does not accept this method; see the Allow header"
        # Starlette names only the first route that matched the path; a path
        # served by several routes (GET and POST /products) allows them all.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return problem(exc.status_code, detail, code=code, headers=headers or None, **extra)


def _allowed_methods(request: Request) -> set[str]:
    # Read from the OpenAPI document (public and cached) rather than from
    # FastAPI's router internals, which nest included routers lazily.
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for template, operations in request.app.openapi().get("paths", {}).items():
        regex, _, _ = compile_path(template)
        if regex.match(path):
            methods |= {method.upper() for method in operations}
    return methods


def _invalid_json() -> JSONResponse:
    error = {
        "field": "body",
        "in": "body",
        "type": "json_invalid",
        "message": _FIXED_MESSAGES["json_invalid"],
    }
    return problem(422, "invalid request: body", code="validation-error", errors=[error])


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # The exception is logged by the server; the client learns nothing internal.
    return problem(500, "internal error", code="internal-error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document describe errors as they are really sent.

    FastAPI documents every 422 as its own ``HTTPValidationError`` in
    ``application/json``; ours are ``ValidationProblem`` in
    ``application/problem+json``. A schema-driven client (or fuzzer) must see
    the real shape and media type, so the generated document is rewritten once.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _rewrite_error_responses(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite_error_responses(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _, defs = models_json_schema(
        [(Problem, "serialization"), (ValidationProblem, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    for name, definition in defs.get("$defs", {}).items():
        components.setdefault(name, definition)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    validation_ref = {"$ref": "#/components/schemas/ValidationProblem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            # Answers every such route can give, whether or not it says so:
            # the token check (401) and the body limit middleware (413).
            if operation.get("security"):
                responses.setdefault("401", {"description": _TITLES[401]})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": _TITLES[413]})
            for status, response in responses.items():
                if not str(status).startswith(("4", "5")):
                    continue
                content = response.setdefault("content", {})
                body = content.pop("application/json", None)
                if str(status) == "422":
                    body = {"schema": validation_ref}
                content[PROBLEM_JSON] = body or content.get(PROBLEM_JSON) or {"schema": problem_ref}
    # FastAPI's own validation schemas are no longer referenced by anything.
    text = json.dumps(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in text:
            components.pop(name, None)


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
                    raise _BodyTooLarge(self.max_bytes)
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


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reader lets it through as it is
    # (anything else it turns into "400 error parsing the body"); the error
    # handler or BodySizeLimit itself then answers 413.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than {max_bytes} bytes")
        self.code = "body-too-large"
