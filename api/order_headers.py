"""The order routes' request headers: ``Idempotency-Key`` and ``Prefer: wait``.

Dependencies for checkout (api/orders.py, api/cart.py) and the order's
changes; each refuses a bad header with a 400 problem before anything is
written.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header

from api.errors import ProblemError

MAX_WAIT_SECONDS = 30
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_KEY_PATTERN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


# Documented by hand (the header itself is declared optional so that its
# absence is the contract's 400, not a 422): required, with its real rules,
# so a client generated from the document always sends a usable key.
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "a client-chosen key (at most 255 printable ASCII characters); "
    "a retry with the same key and body returns the same order",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
        "pattern": f"^{_KEY_PATTERN.pattern}$",
    },
}


async def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)] = None,
) -> str:
    if key is None or not key.strip():
        raise ProblemError(400, "the Idempotency-Key header is required", code="idempotency-key")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not _KEY_PATTERN.fullmatch(key):
        raise ProblemError(
            400,
            f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
            "printable ASCII characters",
            code="idempotency-key",
        )
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


async def prefer_wait(
    prefer: Annotated[
        str | None,
        Header(description=f"`wait=N` (0..{MAX_WAIT_SECONDS}): wait up to N s for the outcome"),
    ] = None,
) -> int | None:
    """The ``wait`` preference of a ``Prefer`` header (RFC 7240), if any."""
    if prefer is None:
        return None
    for preference in prefer.split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        if name.strip().lower() != "wait":
            continue  # other preferences are not ours to refuse
        value = value.strip().strip('"')
        if not value.isdigit() or len(value) > 2 or int(value) > MAX_WAIT_SECONDS:
            raise ProblemError(
                400,
                f"Prefer: wait must be a whole number of seconds from 0 to {MAX_WAIT_SECONDS}",
                code="invalid-prefer",
            )
        return int(value)
    return None


PreferWait = Annotated[int | None, Depends(prefer_wait)]
