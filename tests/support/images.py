"""Small images for tests: a real PNG built with zlib and struct, and JPEG/WebP samples.

The PNG decodes in a browser (the console's browser test checks that the
shop shows it). The JPEG and WebP samples are tiny files with those formats'
headers; the API reads only their magic numbers, never decodes them.
"""

from __future__ import annotations

import base64
import struct
import zlib

from api.images import MAX_IMAGE_BYTES


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (31, 94, 255)) -> bytes:
    """A ``width`` x ``height`` PNG of one colour (8-bit RGB, no interlace)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # Each scanline: filter type 0, then its pixels.
    pixels = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(pixels))
        + _chunk(b"IEND", b"")
    )


# Tiny JPEG (JFIF) and WebP (lossless VP8L) files.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJ"
    "DRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k="
)
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def png_of_size(size: int) -> bytes:
    """A PNG header padded to exactly ``size`` bytes: sniffed as PNG, never decoded."""
    head = png()
    return head + b"\x00" * (size - len(head))


TOO_LARGE = MAX_IMAGE_BYTES + 1
