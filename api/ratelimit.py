"""Per-user rate limits: a token bucket per principal.

Checkout is the most expensive call of the API (it prices the order, writes
it and starts a workflow), so each user may place at most
``checkout_rate_limit`` checkouts per ``checkout_rate_window_seconds``, with
the whole allowance usable as a burst. Over the limit the answer is a 429
problem with ``Retry-After``: the whole seconds until one more checkout is
allowed.

The buckets live in this process's memory, so the limit holds per API
replica: N replicas let a user through up to N times the limit. That bounds
the damage one account can do to Temporal and PostgreSQL without a write per
request; a shared limit would need a table (or a cache) all replicas see.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.deps import CurrentUser
from api.errors import ProblemError
from core.settings import Settings


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``capacity`` requests per ``window_seconds`` per key, refilled continuously.

    Bounded: beyond ``max_keys`` the least recently seen key is forgotten
    (which can only forgive it), so an attacker cannot grow memory without end.
    """

    def __init__(
        self,
        capacity: int,
        window_seconds: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self._rate = capacity / window_seconds if window_seconds > 0 else math.inf
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, key: str) -> int | None:
        """Take one token for ``key``: None if allowed, else the seconds to wait."""
        if self.capacity < 1:
            return None  # limit turned off
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.capacity), now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))


async def checkout_limiter(request: Request) -> TokenBucketLimiter:
    """The app's checkout limiter, made from its settings on first use."""
    state = request.app.state
    limiter: TokenBucketLimiter | None = getattr(state, "checkout_limiter", None)
    if limiter is None:
        settings: Settings = state.resources.settings
        limiter = state.checkout_limiter = TokenBucketLimiter(
            settings.checkout_rate_limit, settings.checkout_rate_window_seconds
        )
    return limiter


async def limit_checkout(
    principal: CurrentUser,
    limiter: Annotated[TokenBucketLimiter, Depends(checkout_limiter)],
) -> None:
    # Keyed by the principal, not the address: customers behind one NAT do
    # not share a limit, and one account cannot dodge it by changing address.
    wait = limiter.acquire(str(principal.user_id))
    if wait is not None:
        raise ProblemError(
            429,
            "too many checkouts from this account; try again later",
            code="rate-limited",
            headers={"Retry-After": str(wait)},
        )


CheckoutRateLimit = Annotated[None, Depends(limit_checkout)]
