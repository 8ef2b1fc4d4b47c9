"""Per-account login throttling.

After ``login_max_failures`` failed logins within
``login_failure_window_seconds`` the account is locked for
``login_lockout_seconds`` after the last of them: every login answers 429 with
Retry-After, even with the right password, so a guesser gains nothing by
going on. A successful login clears the account's failures.

Failures are kept in the ``login_failures`` table, so every process of the
auth service sees the same count, and times come from the database clock. An
email without an account has no row to hang failures on; those are counted in
process memory with the same rule, so "locked" versus "never locked" cannot
reveal whether an address has an account.
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ProblemError
from core.models import LoginFailure
from core.settings import Settings


@dataclass(frozen=True)
class Policy:
    max_failures: int
    window: timedelta
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_failure_window_seconds),
            lockout=timedelta(seconds=settings.login_lockout_seconds),
        )

    @property
    def keep(self) -> timedelta:
        """How long a failure can still matter."""
        return self.window + self.lockout


def retry_after(recent: Sequence[datetime], now: datetime, policy: Policy) -> int | None:
    """Seconds until the account may try again, or None if it is not locked.

    ``recent`` holds the newest failures, newest first.
    """
    if policy.max_failures < 1 or len(recent) < policy.max_failures:
        return None
    newest, oldest = recent[0], recent[policy.max_failures - 1]
    if newest - oldest > policy.window:
        return None
    remaining = (newest + policy.lockout - now).total_seconds()
    return max(1, math.ceil(remaining)) if remaining > 0 else None


def throttled(seconds: int) -> ProblemError:
    # One message for every account, known or not.
    return ProblemError(
        429,
        "too many failed logins for this account; try again later",
        code="login-throttled",
        headers={"Retry-After": str(seconds)},
    )


async def account_retry_after(
    session: AsyncSession, user_id: uuid.UUID, policy: Policy
) -> int | None:
    now = await session.scalar(select(func.now()))
    assert now is not None
    recent = await session.scalars(
        select(LoginFailure.at)
        .where(LoginFailure.user_id == user_id)
        .order_by(LoginFailure.at.desc(), LoginFailure.id.desc())
        .limit(max(policy.max_failures, 1))
    )
    return retry_after(list(recent), now, policy)


async def record_failure(session: AsyncSession, user_id: uuid.UUID, policy: Policy) -> None:
    session.add(LoginFailure(user_id=user_id))
    # Forget this account's failures that can no longer lock it, so the table
    # stays as small as the accounts under attack.
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.user_id == user_id, LoginFailure.at < func.now() - policy.keep
        )
    )


async def clear_failures(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id))


class UnknownEmailThrottle:
    """The same rule for emails without an account, in this process's memory.

    Bounded: an attacker cycling through random addresses evicts the oldest
    entries instead of growing memory without end.
    """

    def __init__(self, policy: Policy, *, max_entries: int = 10_000) -> None:
        self._policy = policy
        self._max_entries = max_entries
        self._failures: OrderedDict[str, list[datetime]] = OrderedDict()

    def retry_after(self, email: str, now: datetime | None = None) -> int | None:
        recent = self._failures.get(email, [])
        return retry_after(recent, now or datetime.now(UTC), self._policy)

    def record_failure(self, email: str, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        recent = [now, *self._failures.pop(email, [])]
        self._failures[email] = [t for t in recent if now - t <= self._policy.keep][
            : max(self._policy.max_failures, 1)
        ]
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)


async def unknown_email_throttle(request: Request) -> UnknownEmailThrottle:
    """The app's throttle for unknown emails, made on first use."""
    state = request.app.state
    throttle: UnknownEmailThrottle | None = getattr(state, "unknown_email_throttle", None)
    if throttle is None:
        settings: Settings = state.resources.settings
        throttle = state.unknown_email_throttle = UnknownEmailThrottle(
            Policy.from_settings(settings)
        )
    return throttle
