"""A test hook that holds an activity at a named point so a test can kill the worker there.

The crash suite (``tests/faults/``) starts worker processes with
``ORDERSAGA_FAULT_POINT=<step>:<before|after>`` (e.g. ``charge_payment:after``):
when an activity reaches that point it writes the file named by
``ORDERSAGA_FAULT_MARKER`` and then waits forever, so the test can SIGKILL the
process exactly between a side effect and the activity's report to Temporal.

Unset (every real deployment), ``reached`` is one dict lookup and returns at
once. The variable is read once at import: a worker's fault point cannot
change while it runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

_POINT = os.environ.get("ORDERSAGA_FAULT_POINT") or None
_MARKER = os.environ.get("ORDERSAGA_FAULT_MARKER") or None


async def reached(name: str) -> None:
    """Block here forever when ``name`` is this worker's fault point."""
    if _POINT is None or name != _POINT:
        return
    if _MARKER is not None:
        Path(_MARKER).write_text(name)
    # Wait for the SIGKILL. (An Event nobody sets: cancellation still works,
    # so a graceful shutdown would not hang on it.)
    await asyncio.Event().wait()
