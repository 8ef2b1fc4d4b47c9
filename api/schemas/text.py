"""Text rules shared by every request schema, stated once for the app and the OpenAPI document.

PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as
UTF-8; either would reach the database and fail there as a 500, so every
free-text field is checked here first.

Required text is trimmed and must not be blank. "Blank" is exactly what
Python's ``str.strip()`` removes (``BLANK``), and the same regex that refuses
a blank value here is published as the field's ``pattern``: a client or a
fuzzer that follows the document sends nothing the app then refuses. (A
``\\s`` in a pattern would not do: ECMA-262, which JSON Schema patterns follow,
leaves out U+0085 and U+001C-U+001F, and pydantic's own ``strip_whitespace``
strips Unicode White_Space, which leaves out U+001C-U+001F too.)
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

# Every character str.strip() removes (str.isspace()), spelled out so the
# published pattern means the same in every regex dialect.
BLANK = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
_NOT_BLANK_CHAR = f"[^{BLANK}\\x00]"

NO_NUL = r"^[^\x00]*$"
# At least one character that is neither blank nor NUL; no NUL anywhere.
NOT_BLANK = rf"^[^\x00]*{_NOT_BLANK_CHAR}[^\x00]*$"
# At least two such characters (a country name or code).
TWO_NOT_BLANK = rf"^[^\x00]*{_NOT_BLANK_CHAR}[^\x00]*{_NOT_BLANK_CHAR}[^\x00]*$"


def strip_text(value: Any) -> Any:
    """Trim what str.strip() trims; anything but a str is left for type validation."""
    return value.strip() if isinstance(value, str) else value


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


# Trimmed text: strip_text runs first, then the constraints see the trimmed
# value. The pattern holds for a value iff it holds for the value trimmed, so
# the document's pattern (checked before trimming) and the app agree.
Stripped = BeforeValidator(strip_text)


def raw_at_most(limit: int) -> BeforeValidator:
    """The published maxLength, on the text as sent (before trimming).

    The document states lengths of the value as sent; checked only after
    trimming, 201 characters with a leading space would pass a maxLength of
    200. Listed after ``Stripped`` in an Annotated, so it runs before it
    (pydantic runs before-validators right to left).
    """

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": limit},
            )
        return value

    return BeforeValidator(check)


# One line of required text (trimmed; not blank; no NUL), by maximum length.
# Names, categories and address lines share these so their rules cannot drift.
Text100 = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK),
    AfterValidator(plain_text),
    Stripped,
    raw_at_most(100),
]
Text200 = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK),
    AfterValidator(plain_text),
    Stripped,
    raw_at_most(200),
]
