"""notification channels: preferences, provider ids, refused messages

Revision ID: 8e3f1b6c2d90
Revises: 3c1a5e7d9f20
Create Date: 2026-11-25 17:00:00.000000

users.notify_email / notify_sms are the customer's channels (email on, SMS
off, as before for everyone without a phone; customers with an E.164 phone
got SMS until now, so theirs starts on to keep what they had). notifications gains
the provider's message id, the reason of a refusal and the status 'failed'.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = '8e3f1b6c2d90'
down_revision: Union[str, Sequence[str], None] = '3c1a5e7d9f20'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('users', sa.Column('notify_email', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('users', sa.Column('notify_sms', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Phones were free text; those that are E.164 once spaces, dots, dashes
    # and brackets are dropped are stored so (what the SMS providers take),
    # and their owners keep the texts they got until now. The others keep
    # their text and SMS off until the customer gives an E.164 number.
    op.execute(
        r"""
        UPDATE users SET phone = regexp_replace(phone, '[ ().-]', '', 'g'), notify_sms = true
        WHERE regexp_replace(phone, '[ ().-]', '', 'g') ~ '^\+[1-9][0-9]{6,14}$'
        """
    )
    op.add_column('notifications', sa.Column('provider_message_id', sa.String(length=255), nullable=True))
    op.add_column('notifications', sa.Column('failure', sa.String(length=64), nullable=True))
    # PostgreSQL 12+ adds an enum value inside a transaction (it may not be
    # used in that same transaction, and nothing here does).
    op.execute("ALTER TYPE notification_status ADD VALUE IF NOT EXISTS 'failed'")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM notifications WHERE status = 'failed'")
    op.execute("ALTER TYPE notification_status RENAME TO notification_status_old")
    op.execute("CREATE TYPE notification_status AS ENUM ('sending', 'sent')")
    op.execute(
        "ALTER TABLE notifications ALTER COLUMN status TYPE notification_status"
        " USING status::text::notification_status"
    )
    op.execute("DROP TYPE notification_status_old")
    op.drop_column('notifications', 'failure')
    op.drop_column('notifications', 'provider_message_id')
    op.drop_column('users', 'notify_sms')
    op.drop_column('users', 'notify_email')
