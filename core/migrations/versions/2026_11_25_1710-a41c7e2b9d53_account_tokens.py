"""account tokens: password reset, email verification, their throttle

Revision ID: a41c7e2b9d53
Revises: 8e3f1b6c2d90
Create Date: 2026-11-25 17:10:00.000000

Accounts that exist before this migration are marked verified as of now:
they predate verification, their mailbox has been getting their order mail,
and leaving them unverified would make every existing customer's checkout
answer 403 the moment ORDERSAGA_REQUIRE_VERIFIED_EMAIL takes effect.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = 'a41c7e2b9d53'
down_revision: Union[str, Sequence[str], None] = '8e3f1b6c2d90'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('users', sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE users SET email_verified_at = now()")
    op.create_table('account_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.Enum('password_reset', 'verify_email', name='token_purpose'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_account_tokens'))
    )
    op.create_index('ix_account_tokens_user_purpose', 'account_tokens', ['user_id', 'purpose'], unique=False)
    op.create_table('account_requests',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_requests'))
    )
    op.create_index('ix_account_requests_action_account_at', 'account_requests', ['action', 'account', 'at'], unique=False)
    op.create_index('ix_account_requests_action_client_at', 'account_requests', ['action', 'client', 'at'], unique=False)
    op.create_index(op.f('ix_account_requests_at'), 'account_requests', ['at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_account_requests_at'), table_name='account_requests')
    op.drop_index('ix_account_requests_action_client_at', table_name='account_requests')
    op.drop_index('ix_account_requests_action_account_at', table_name='account_requests')
    op.drop_table('account_requests')
    op.drop_index('ix_account_tokens_user_purpose', table_name='account_tokens')
    op.drop_table('account_tokens')
    op.execute("DROP TYPE token_purpose")
    op.drop_column('users', 'email_verified_at')
