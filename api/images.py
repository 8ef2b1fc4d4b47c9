"""Uploaded images: what kind they really are, their limits, and their ETag.

A picture's type is read from its first bytes (its magic number), never
from a file name; the type a client declares must agree with it. Only PNG,
JPEG and WebP are taken: formats a browser shows as a picture and nothing
else (no SVG, whose markup could run script on this origin).

Everything here is pure: the routes and the console pages call it before
anything is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from api.errors import ProblemError

MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")


def sniff_image_type(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the bytes' magic numbers, else None."""
    # PNG: the signature, then the IHDR chunk that must come first.
    if data.startswith(_PNG) and data[12:16] == b"IHDR":
        return "image/png"
    # JPEG: start of image, then the first marker's 0xFF.
    if data.startswith(_JPEG):
        return "image/jpeg"
    # WebP: a RIFF container of form WEBP whose first chunk is a VP8 stream.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] in _WEBP_CHUNKS:
        return "image/webp"
    return None


def media_type(content_type: str | None) -> str:
    """A Content-Type's bare media type, lower case: ``image/png; x=y`` → ``image/png``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes
    sha256: str

    @property
    def etag(self) -> str:
        return etag(self.sha256)


def etag(sha256: str) -> str:
    """A strong ETag: the SHA-256 of the bytes, quoted."""
    return f'"{sha256}"'


def etag_matches(if_none_match: str | None, current: str) -> bool:
    """Whether an If-None-Match header names ``current`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(
        tag.strip().removeprefix("W/") == current for tag in if_none_match.split(",") if tag.strip()
    )


def checked_image(data: bytes, declared: str | None) -> Image:
    """The upload as an Image, or the refusal: 413 when too large, 415 when not what it claims.

    Problem types: ``image-too-large``, ``unsupported-image`` (the declared
    type or the bytes are not PNG, JPEG or WebP) and ``image-type-mismatch``
    (the bytes are another of those types than the one declared).
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ProblemError(
            413, f"an image may be at most {MAX_IMAGE_BYTES} bytes", code="image-too-large"
        )
    kind = sniff_image_type(data)
    if media_type(declared) not in IMAGE_TYPES or kind is None:
        raise ProblemError(415, "the image must be PNG, JPEG or WebP", code="unsupported-image")
    if kind != media_type(declared):
        raise ProblemError(
            415,
            "the image's bytes are not of the type its Content-Type declares",
            code="image-type-mismatch",
        )
    return Image(kind, data, hashlib.sha256(data).hexdigest())
