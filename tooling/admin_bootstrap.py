"""The first administrator, made once: `ordersaga bootstrap-admin`.

Deployments run this on every sync (the migrate hook, compose's migrate job),
so it must never undo what an admin did since: once any admin exists it does
nothing, whatever the password in the Secret says. `ordersaga create-admin`
stays the explicit way to reset a password or promote someone.
"""

from __future__ import annotations

import enum

from sqlalchemy import exists, func, select

from api.auth.accounts import create_or_promote_admin
from core.db import SessionFactory
from core.models import Role, User

# Two pods bootstrapping at once (init containers, a retried hook) take turns
# on this advisory lock, so at most one of them creates the account.
BOOTSTRAP_LOCK_KEY = 0x61646D696E  # "admin"


class Outcome(enum.StrEnum):
    CREATED = "created"
    ADMIN_EXISTS = "admin-exists"


async def bootstrap_admin(sessions: SessionFactory, email: str, password: str) -> Outcome:
    """Make ``email`` an admin with ``password`` only if there is no admin at all."""
    async with sessions() as session, session.begin():
        await session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK_KEY)))
        if await session.scalar(select(exists().where(User.role == Role.ADMIN))):
            return Outcome.ADMIN_EXISTS
        # Still holding the lock (this transaction stays open), so no other
        # bootstrap can pass the check above until this one has committed.
        await create_or_promote_admin(sessions, email, password)
    return Outcome.CREATED
