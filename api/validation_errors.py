"""Validation errors rendered so that nothing in them comes from the request.

A 422's ``errors`` name each failing field by location and machine-readable
``type``. The field keeps only names the app itself declares, and a message
is sent only when it is fixed text (see the rules above ``_message``); the
problem around them is built in api/errors.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from core.models import Base


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


def field_error(err: dict[str, Any], declared: frozenset[str]) -> dict[str, str]:
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


def declared_names(app: FastAPI) -> frozenset[str]:
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


def invalid_json_error() -> dict[str, str]:
    """The one error of a body that is not JSON (or not UTF-8)."""
    return {
        "field": "body",
        "in": "body",
        "type": "json_invalid",
        "message": _FIXED_MESSAGES["json_invalid"],
    }
