"""Throttle for requests that mail a token or make an account (reset, register).

A fixed window per email (its SHA-256, with or without an account alike)
and per client address, in PostgreSQL so every replica counts the same.
Unlike the login throttle there is no back-off: these requests cost us a mail
or a password hash, not a guess, so a cap per hour is enough. Under
concurrency the count can overshoot by the requests in flight at once.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ProblemError
from core.models import AccountRequest


@dataclass(frozen=True)
class Limit:
    action: str
    per_account: int | None
    per_client: int
    window: timedelta


def account_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


async def count_request(
    session: AsyncSession, limit: Limit, client: str, email: str | None = None
) -> None:
    """Count this request, or raise 429 (and count nothing) when a scope is full."""
    account = account_key(email) if email is not None else None
    waits = []
    scopes = [(AccountRequest.client == client, limit.per_client)]
    if account is not None and limit.per_account is not None:
        scopes.append((AccountRequest.account == account, limit.per_account))
    for scope, allowance in scopes:
        now, count, oldest = (
            await session.execute(
                select(func.now(), func.count(), func.min(AccountRequest.at)).where(
                    AccountRequest.action == limit.action,
                    scope,
                    AccountRequest.at > func.now() - limit.window,
                )
            )
        ).one()
        if count >= allowance and oldest is not None:
            waits.append(max(1, math.ceil((oldest + limit.window - now).total_seconds())))
    if waits:
        raise ProblemError(
            429,
            "too many requests; try again later",
            code="too-many-requests",
            headers={"Retry-After": str(max(waits))},
        )
    session.add(AccountRequest(action=limit.action, account=account, client=client))
    # Rows older than the window no longer count for anything.
    await session.execute(
        delete(AccountRequest).where(
            AccountRequest.action == limit.action, AccountRequest.at < func.now() - limit.window
        )
    )
