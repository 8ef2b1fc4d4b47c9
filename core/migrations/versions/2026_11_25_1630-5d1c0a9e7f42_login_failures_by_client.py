"""login failures by account and client address

Revision ID: 5d1c0a9e7f42
Revises: 4c1e9d2a7f30
Create Date: 2026-11-25 16:30:00.000000

The login throttle now counts failures per (account, client address), per
account and per address (api/auth/throttle.py), for emails with and without
an account alike. Failures only matter for a day at most, so the old rows
(by user id, without an address) are dropped rather than carried over: at
worst an account under attack right now gets its free attempts back once.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '5d1c0a9e7f42'
down_revision: Union[str, Sequence[str], None] = '4c1e9d2a7f30'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_index(op.f('ix_login_failures_at'), table_name='login_failures')
    op.drop_table('login_failures')
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_account_at', 'login_failures', ['account', 'at'], unique=False)
    op.create_index('ix_login_failures_client_at', 'login_failures', ['client', 'at'], unique=False)
    op.create_index(op.f('ix_login_failures_at'), 'login_failures', ['at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_login_failures_at'), table_name='login_failures')
    op.drop_index('ix_login_failures_client_at', table_name='login_failures')
    op.drop_index('ix_login_failures_account_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_failures_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index(op.f('ix_login_failures_at'), 'login_failures', ['at'], unique=False)
