"""Login throttling: per account and client address, with exponential back-off.

Following OWASP's Authentication Cheat Sheet, a failed login counts against
three scopes at once, each with the same back-off once past its allowance:

- **(account, address)**: after ``login_max_failures`` failures from one
  address on one account (counted over ``login_failure_window_seconds``),
  that pair waits ``login_backoff_base_seconds``, doubled with each further
  failure, up to ``login_lockout_seconds``. Only that pair waits: the owner,
  from any other address, logs in as usual. A success from the pair clears
  its failures.
- **account** (all addresses): past ``login_account_max_failures`` within
  ``login_ceiling_window_seconds`` the account backs off for every address.
  This ceiling is what caps a guess spread over many addresses; it is set
  well above what one backed-off address can reach in that window, so one
  attacker alone cannot lock the owner out.
- **address** (all accounts): past ``login_address_max_failures`` within the
  same window, one address trying many accounts (credential stuffing) backs
  off on all of them.

While any scope waits, every login in it answers 429 with Retry-After, even
with the right password, so a guesser learns nothing by going on; those
attempts are not counted, so a back-off has a fixed end. Tokens already
issued keep working.

The failures are rows of ``login_failures`` and times come from the database
clock, so every replica of the API or auth service sees the same counts.
Emails with and without an account are counted alike (by a SHA-256 of the
normalized email), so the throttle cannot reveal which addresses have
accounts. Attempts on one account are serialized by a transaction-scoped
advisory lock, which keeps the pair and account counts exact under
concurrency; the per-address count can be overshot by the requests one
address has in flight at once, after which its back-off applies.

The client address is ``request.client.host``: behind a reverse proxy, run
uvicorn with ``--proxy-headers --forwarded-allow-ips=<the proxy's address>``
(``FORWARDED_ALLOW_IPS``) so it is the client's, never a blindly trusted
X-Forwarded-For. An IPv6 address counts by its /64, which one host holds whole.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ProblemError
from core.models import LoginFailure
from core.settings import Settings


@dataclass(frozen=True)
class Policy:
    pair_allowance: int
    pair_window: timedelta
    backoff_base: timedelta
    backoff_max: timedelta
    account_allowance: int
    address_allowance: int
    ceiling_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            pair_allowance=settings.login_max_failures,
            pair_window=timedelta(seconds=settings.login_failure_window_seconds),
            backoff_base=timedelta(seconds=settings.login_backoff_base_seconds),
            backoff_max=timedelta(seconds=settings.login_lockout_seconds),
            account_allowance=settings.login_account_max_failures,
            address_allowance=settings.login_address_max_failures,
            ceiling_window=timedelta(seconds=settings.login_ceiling_window_seconds),
        )

    @property
    def keep(self) -> timedelta:
        """How long a failure can still matter."""
        return max(self.pair_window, self.ceiling_window) + self.backoff_max

    def backoff(self, failures: int, allowance: int) -> timedelta | None:
        """The wait after the latest of ``failures``, or None within the allowance."""
        if failures < allowance:
            return None
        # Capped exponent: the wait is capped anyway, the power must not overflow.
        doubling = 1 << min(failures - allowance, 30)
        return min(self.backoff_base * doubling, self.backoff_max)


@dataclass(frozen=True)
class Tally:
    """Failures of one scope within its window, and the newest of them."""

    failures: int
    latest: datetime | None
    allowance: int


def retry_after(tallies: Sequence[Tally], now: datetime, policy: Policy) -> int | None:
    """Seconds until every scope lets a login through, or None if none waits."""
    waits = []
    for tally in tallies:
        wait = policy.backoff(tally.failures, tally.allowance)
        if wait is None or tally.latest is None:
            continue
        remaining = (tally.latest + wait - now).total_seconds()
        if remaining > 0:
            waits.append(max(1, math.ceil(remaining)))
    return max(waits, default=None)


@dataclass(frozen=True)
class Attempt:
    """Who is being tried (``account``: a SHA-256 of the email) and from where."""

    account: str
    client: str

    @classmethod
    def of(cls, email: str, client: str) -> Attempt:
        return cls(hashlib.sha256(email.encode()).hexdigest(), client)

    @property
    def lock_key(self) -> int:
        return int.from_bytes(bytes.fromhex(self.account[:16]), "big", signed=True)


def client_address(request: Request) -> str:
    """What the throttle counts a request's client by."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def throttled(seconds: int) -> ProblemError:
    # One message for every scope and every account, known or not.
    return ProblemError(
        429,
        "too many failed logins; try again later",
        code="login-throttled",
        headers={"Retry-After": str(seconds)},
    )


async def hold(session: AsyncSession, attempt: Attempt) -> None:
    """Serialize attempts on this account until the transaction ends.

    The users row cannot do it for an email without an account; a caller that
    also locks the users row locks it first, so the order is always the same.
    """
    await session.execute(select(func.pg_advisory_xact_lock(attempt.lock_key)))


async def attempt_retry_after(
    session: AsyncSession, attempt: Attempt, policy: Policy
) -> int | None:
    now = func.now()
    pair = and_(
        LoginFailure.account == attempt.account,
        LoginFailure.client == attempt.client,
        LoginFailure.at > now - policy.pair_window,
    )
    account = and_(
        LoginFailure.account == attempt.account, LoginFailure.at > now - policy.ceiling_window
    )
    address = and_(
        LoginFailure.client == attempt.client, LoginFailure.at > now - policy.ceiling_window
    )
    row = (
        await session.execute(
            select(
                func.now(),
                *(
                    column
                    for scope in (pair, account, address)
                    for column in (
                        func.count().filter(scope),
                        func.max(LoginFailure.at).filter(scope),
                    )
                ),
            ).where(
                or_(LoginFailure.account == attempt.account, LoginFailure.client == attempt.client),
                LoginFailure.at > now - max(policy.pair_window, policy.ceiling_window),
            )
        )
    ).one()
    current, *counts = row
    allowances = (policy.pair_allowance, policy.account_allowance, policy.address_allowance)
    tallies = [
        Tally(counts[2 * i], counts[2 * i + 1], allowance) for i, allowance in enumerate(allowances)
    ]
    return retry_after(tallies, current, policy)


async def record_failure(session: AsyncSession, attempt: Attempt, policy: Policy) -> None:
    session.add(LoginFailure(account=attempt.account, client=attempt.client))
    # Forget failures that can no longer matter, so the table stays as small
    # as the attacks under way.
    await session.execute(delete(LoginFailure).where(LoginFailure.at < func.now() - policy.keep))


async def clear_failures(session: AsyncSession, attempt: Attempt) -> None:
    """A success clears its own pair only: others' failures on the account still count."""
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.account == attempt.account, LoginFailure.client == attempt.client
        )
    )
