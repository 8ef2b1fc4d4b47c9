"""A product's picture, kept in PostgreSQL next to the product it shows.

One image per product at most (its primary key is the product's). The bytes
were checked to be PNG, JPEG or WebP by their magic numbers before they were
written (api/images.py); ``sha256`` is their hex digest, the strong ETag
GET /products/{id}/image answers with.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base


class ProductImage(Base):
    __tablename__ = "product_images"

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    # bytea; at most api.images.MAX_IMAGE_BYTES (2 MiB).
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
