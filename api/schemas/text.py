"""Text rules shared by every request schema.

PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as
UTF-8; either would reach the database and fail there as a 500, so every
free-text field is checked here first. The patterns also go into the
OpenAPI document, so a client generated from it (or a fuzzer) knows them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# The patterns put the NUL and blank rules into the OpenAPI document too, so
# a client generated from it (or a fuzzer) knows them; plain_text still
# guards what a pattern cannot say.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def plain_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded
    # as UTF-8; both would otherwise reach the database and fail there as a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


# One line of required text (trimmed; not blank; no NUL), by maximum length.
# Names, categories and address lines share these so their rules cannot drift.
Text100 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK),
    AfterValidator(plain_text),
]
Text200 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK),
    AfterValidator(plain_text),
]
