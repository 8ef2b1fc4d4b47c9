"""One error shape for every route: RFC 9457 problem details.

Every error answer is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``, a list naming
each failing field by location and machine-readable ``type``.

No error body reflects what the client sent (no path, query, header or body
text, not even a refused key's name): a password, a card token or markup
can never come back in an error. Details are fixed text written here or in
the routes; validation errors are rendered by api/validation_errors.py
(tests/api/test_error_reflection.py sends a marker to every route to prove it).
The body size limit's middleware is api/body_limit.py.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api.validation_errors import declared_names, field_error, invalid_json_error

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


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    declared = declared_names(request.app)
    errors = [field_error(err, declared) for err in exc.errors()]
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
    error = invalid_json_error()
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
