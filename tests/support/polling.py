"""One bounded poll for the suite: each wait has its own deadline and names what it waited for.

Polling is for conditions nothing signals (another process, PostgreSQL's
lock table, a span exporter); inside one process an ``asyncio.Event`` is
better. The deadline is generous (the machines are shared): it only turns a
hang into a clear failure, and it is never an assertion on speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for a loaded 2-core machine; a test passes in far less.
DEFAULT_TIMEOUT = 60.0


class PollTimeout(AssertionError):
    """The condition did not hold before the poll's deadline."""


async def poll_until(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
) -> T:
    """Await ``check()`` until it returns something other than None (or False); return it.

    Raises PollTimeout naming ``what`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise PollTimeout(f"{what}: not after {timeout:g} s")
        await asyncio.sleep(interval)
