"""Product images, the pure parts: sniffing by magic number, ETags, the check, body limits."""

from __future__ import annotations

import hashlib

import pytest

from api.body_limit import BodySizeLimit, RouteBodyLimit
from api.errors import ProblemError
from api.images import (
    MAX_IMAGE_BYTES,
    checked_image,
    etag,
    etag_matches,
    media_type,
    sniff_image_type,
)
from tests.support.images import JPEG, WEBP, png, png_of_size

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("data", "kind"),
    [(png(), "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
)
def test_each_accepted_type_is_known_by_its_magic_number(data: bytes, kind: str) -> None:
    assert sniff_image_type(data) == kind


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, I am a text file named cat.png\n",
        GIF,
        SVG,
        b"\x89PNG\r\n\x1a\n",  # the PNG signature alone, no IHDR chunk
        png()[:12] + b"IDAT",  # a PNG whose first chunk is not IHDR
        b"\xff\xd8",  # half a JPEG start
        b"RIFF\x1a\x00\x00\x00WAVEfmt ",  # a RIFF file that is not WebP
        b"RIFF\x1a\x00\x00\x00WEBPXXXX",  # WebP without a VP8 chunk
        b"%PDF-1.7\n",
    ],
)
def test_anything_else_is_not_an_image(data: bytes) -> None:
    assert sniff_image_type(data) is None


def test_the_type_comes_from_the_bytes_not_from_the_start_of_a_name() -> None:
    # What a file is called plays no part: only the bytes are read.
    assert sniff_image_type(b"cat.png" + png()) is None


@pytest.mark.parametrize(
    ("header", "bare"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG; charset=binary", "image/png"),
        (" image/webp ", "image/webp"),
        ("", ""),
        (None, ""),
    ],
)
def test_media_type_is_the_bare_lower_case_type(header: str | None, bare: str) -> None:
    assert media_type(header) == bare


def test_checked_image_keeps_type_bytes_and_digest() -> None:
    data = png()
    image = checked_image(data, "image/png")
    assert (image.content_type, image.data) == ("image/png", data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert image.etag == f'"{image.sha256}"'


@pytest.mark.parametrize(
    ("data", "declared", "status", "code"),
    [
        (png(), "image/jpeg", 415, "image-type-mismatch"),
        (JPEG, "image/webp", 415, "image-type-mismatch"),
        (b"just text", "image/png", 415, "unsupported-image"),
        (GIF, "image/gif", 415, "unsupported-image"),
        (SVG, "image/svg+xml", 415, "unsupported-image"),
        (png(), None, 415, "unsupported-image"),
        (png(), "application/octet-stream", 415, "unsupported-image"),
        (png_of_size(MAX_IMAGE_BYTES + 1), "image/png", 413, "image-too-large"),
    ],
)
def test_checked_image_refusals(data: bytes, declared: str | None, status: int, code: str) -> None:
    with pytest.raises(ProblemError) as refused:
        checked_image(data, declared)
    assert (refused.value.status_code, refused.value.code) == (status, code)


def test_an_image_of_exactly_the_limit_is_taken() -> None:
    assert len(checked_image(png_of_size(MAX_IMAGE_BYTES), "image/png").data) == MAX_IMAGE_BYTES


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
        ("abc", False),  # unquoted is another tag
        ("", False),
        (None, False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, etag("abc")) is matches


def test_a_route_limit_applies_to_its_method_and_whole_path_only() -> None:
    image = RouteBodyLimit("PUT", r"/products/[^/]+/image", MAX_IMAGE_BYTES)
    limit = BodySizeLimit(app=None, max_bytes=1024, routes=[image])  # type: ignore[arg-type]

    def scope(method: str, path: str) -> dict[str, str]:
        return {"type": "http", "method": method, "path": path}

    assert limit.limit_for(scope("PUT", "/products/42/image")) == MAX_IMAGE_BYTES
    assert limit.limit_for(scope("POST", "/products/42/image")) == 1024
    assert limit.limit_for(scope("PUT", "/products/42/image/x")) == 1024
    assert limit.limit_for(scope("PUT", "/x/products/42/image")) == 1024
    assert limit.limit_for(scope("PATCH", "/products/42")) == 1024
