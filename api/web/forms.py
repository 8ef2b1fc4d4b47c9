"""Reading a posted form into the API's own request schemas, and safe error messages.

Pages validate with the same pydantic models as the REST routes. A refusal is
shown per field with a message chosen here by its kind, so nothing the
visitor typed is ever written back into the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError

from api.errors import ProblemError
from api.web.csrf import FIELD

_MESSAGES = {
    "missing": "This field is required.",
    "string_too_short": "This is too short.",
    "string_too_long": "This is too long.",
    "string_pattern_mismatch": "This contains characters that are not allowed.",
}
# Rule texts that name a rule and never the input (api/auth/passwords.weakness).
_RULE_FIELDS = {"password", "new_password"}


async def posted(request: Request) -> dict[str, str]:
    """The posted text fields, without the CSRF token; blank optional fields dropped."""
    form = await request.form()
    return {
        name: value.strip() if name not in _RULE_FIELDS | {"current_password"} else value
        for name, value in form.items()
        if isinstance(value, str) and name != FIELD and value.strip()
    }


def field_errors(err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in err.errors():
        loc = [str(part) for part in problem.get("loc", ()) if not isinstance(part, int)]
        name = loc[-1] if loc else "form"
        kind = problem.get("type", "")
        if kind == "value_error" and name in _RULE_FIELDS:
            message = str(problem.get("msg", "")).removeprefix("Value error, ")
        else:
            message = _MESSAGES.get(kind, "Please check this field.")
        errors.setdefault(name, message)
    return errors


def nested(data: dict[str, str], prefix: str) -> dict[str, Any]:
    """Fields named ``prefix.x`` as a dict ``{x: ...}``."""
    return {k.removeprefix(prefix + "."): v for k, v in data.items() if k.startswith(prefix + ".")}


def problem_field_errors(err: ProblemError) -> dict[str, str]:
    """A route's own 422 for a rule across fields (``invalid_field``), per field.

    Its messages name the rule (api/auth/profile.invalid_field), never the input.
    """
    errors: dict[str, str] = {}
    if err.status_code != 422:
        return errors
    for problem in err.extra.get("errors", []):
        field, message = problem.get("field"), problem.get("message")
        if isinstance(field, str) and isinstance(message, str):
            errors.setdefault(field, message)
    return errors
