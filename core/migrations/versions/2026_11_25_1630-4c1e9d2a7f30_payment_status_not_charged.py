"""payment status not_charged: a payment settled without any charge

An order that ends before its charge was attempted (rejected for stock,
cancelled early) used to leave its payment ``pending`` with the card token
kept. It is now settled as ``not_charged`` and the token cleared; this
backfills the orders that ended that way before.

Revision ID: 4c1e9d2a7f30
Revises: b7ad633bb43c
Create Date: 2026-11-25 16:30:00.000000

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '4c1e9d2a7f30'
down_revision: Union[str, Sequence[str], None] = 'b7ad633bb43c'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the value, then settle the payments of orders that already ended."""
    # A new enum value cannot be used in the transaction that adds it.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE payment_status ADD VALUE IF NOT EXISTS 'not_charged'")
    op.execute(
        """
        UPDATE payments p SET status = 'not_charged', token = NULL, updated_at = now()
        FROM orders o
        WHERE o.id = p.order_id AND p.status = 'pending'
          AND o.status IN ('rejected', 'payment_failed', 'cancelled')
        """
    )
    # No order past pending needs its card token any more.
    op.execute(
        """
        UPDATE payments p SET token = NULL, updated_at = now()
        FROM orders o
        WHERE o.id = p.order_id AND o.status <> 'pending' AND p.token IS NOT NULL
        """
    )


def downgrade() -> None:
    """PostgreSQL cannot drop an enum value: map it back to the old spelling."""
    # The value stays in the type (unused); upgrade re-adds it IF NOT EXISTS.
    op.execute("UPDATE payments SET status = 'pending' WHERE status = 'not_charged'")
