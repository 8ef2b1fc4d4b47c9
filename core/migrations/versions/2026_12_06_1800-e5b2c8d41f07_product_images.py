"""product images: one picture per product, its bytes in PostgreSQL

Revision ID: e5b2c8d41f07
Revises: a41c7e2b9d53
Create Date: 2026-12-06 18:00:00.000000

The bytes (PNG, JPEG or WebP, at most 2 MiB, checked by their magic numbers
before they are written) with their type, SHA-256 (the strong ETag) and size.
Products are never deleted (withdrawn instead); the cascade only keeps a
manual delete from failing on its picture.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b2c8d41f07"
down_revision: str | Sequence[str] | None = "a41c7e2b9d53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "product_images",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_images_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_images")),
    )


def downgrade() -> None:
    op.drop_table("product_images")
