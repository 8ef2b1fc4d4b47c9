"""Creating accounts and checking their passwords.

Used by the routes, the ``ordersaga create-admin`` command and the dev
stack's seeding, so every way of making an account applies the same rules.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import burn_verify, hash_password, needs_rehash, verify_password, weakness
from api.auth.throttle import (
    Attempt,
    Policy,
    attempt_retry_after,
    clear_failures,
    hold,
    record_failure,
    throttled,
)
from core.db import SessionFactory
from core.models import Role, User


class EmailTaken(Exception):
    """An account with this email exists already."""


class WeakPassword(ValueError):
    """The password breaks a rule; the message names the rule, never the password."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    sessions: SessionFactory,
    *,
    email: str,
    password: str,
    name: str,
    phone: str | None = None,
    role: Role = Role.CUSTOMER,
) -> User:
    email = normalize_email(email)
    problem = weakness(password, email)
    if problem:
        raise WeakPassword(problem)
    user = User(
        email=email,
        password_hash=await hash_password(password),
        name=name,
        phone=phone,
        role=role,
    )
    try:
        async with sessions() as session, session.begin():
            session.add(user)
    except IntegrityError as err:
        # The unique index decides, so two racing registrations cannot both win.
        raise EmailTaken(email) from err
    return user


async def create_or_promote_admin(sessions: SessionFactory, email: str, password: str) -> User:
    """Make ``email`` an admin whose password is ``password``.

    Idempotent: run again with the same arguments, it changes nothing (so the
    dev stack can call it on every start). An existing customer is promoted;
    if its password differs it is replaced, which revokes its older tokens.
    """
    email = normalize_email(email)
    problem = weakness(password, email)
    if problem:
        raise WeakPassword(problem)
    async with sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == email).with_for_update())
        if user is not None:
            user.role = Role.ADMIN
            if not await verify_password(user.password_hash, password):
                user.password_hash = await hash_password(password)
                user.token_version += 1
            return user
    try:
        return await create_user(
            sessions, email=email, password=password, name="Administrator", role=Role.ADMIN
        )
    except EmailTaken:
        # Registered between our look-up and our insert: promote that one.
        return await create_or_promote_admin(sessions, email, password)


async def check_password(
    session: AsyncSession,
    email: str,
    user: User | None,
    password: str,
    policy: Policy,
    client: str,
) -> bool:
    """Verify ``password`` for the account of ``email`` (``user``, or None if
    it has none) from ``client``, under the login throttle.

    Raises the 429 problem while the attempt must wait. A failure is recorded
    and a success clears this address's failures; the caller commits. An
    email without an account fails like a wrong password, after the same
    argon2 work, and counts alike. ``user``, if any, should already be locked
    (``FOR UPDATE``): the account's advisory lock is taken after it.
    """
    attempt = Attempt.of(normalize_email(email), client)
    await hold(session, attempt)
    wait = await attempt_retry_after(session, attempt, policy)
    if wait is not None:
        raise throttled(wait)
    if user is None:
        await burn_verify(password)
        ok = False
    else:
        ok = await verify_password(user.password_hash, password)
    if not ok:
        await record_failure(session, attempt, policy)
        return False
    await clear_failures(session, attempt)
    assert user is not None
    if needs_rehash(user.password_hash):
        # Hashes made with older (cheaper) parameters are upgraded on the
        # first login that proves the password.
        user.password_hash = await hash_password(password)
    return True
