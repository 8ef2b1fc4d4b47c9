"""Running workflow code to its end even while the workflow is being cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def uninterruptible(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` in its own task, shielded from cancellation of the caller.

    Compensations must finish once started: a cancellation that arrives while
    they run only interrupts the outer await, so it is absorbed and the same
    task awaited again. Deterministic: the task runs on the workflow's own
    event loop like any other.
    """
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
