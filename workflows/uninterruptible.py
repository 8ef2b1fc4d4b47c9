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


async def finish_then_honour_cancel(work: Coroutine[Any, Any, T]) -> T:
    """Let a saga step in flight finish, then raise a cancellation that arrived meanwhile.

    Cancelling the activity instead would race it: a charge could be captured
    after the refund that was meant to undo it already ran. Waiting for the
    step means the compensations know exactly what was done. (Asking Temporal
    to wait for the activity's cancellation is not enough: if the activity
    completes anyway, its result is returned and the cancellation is lost.)
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return result
