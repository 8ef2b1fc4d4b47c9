"""What a saga step is: its activity, how its input is built, its options and its undo.

Plain frozen dataclasses and type aliases, no workflow calls: the saga's table
(``workflows/checkout.py``) is made of these, and ``workflows/steps.py`` runs
them. Imported passed through the sandbox, like ``checkout_io.py``: a module
of plain dataclasses holds no state one workflow run could leak into the
next, while creating its two dataclasses again for every new workflow
instance was about a quarter of the instance's import time (see
docs/PERFORMANCE.md, "Issue 16"). The modules that call the workflow API
stay inside the sandbox, which keeps checking them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from workflows.retry_policies import ActivityOptions, RunTimeouts

# An activity method (called by reference, never by name) and its input.
Activity = Callable[[Any, Any], Awaitable[Any]]
# Builds a step's input from the order id and the failure reason ("" before
# the saga fails).
InputOf = Callable[[str, str], object]
# A step's options, from what this run's timeouts are.
OptionsOf = Callable[[RunTimeouts], ActivityOptions]


@dataclass(frozen=True)
class Undo:
    """A compensation: run until it succeeds (see compensation.py)."""

    name: str  # the activity name, for the timeline and the attention flag
    activity: Activity
    input: InputOf
    options: OptionsOf


@dataclass(frozen=True)
class Step:
    """A forward step before (or at) the pivot."""

    name: str  # the activity name; failures.classify_failure reads it
    activity: Activity
    input: InputOf
    options: OptionsOf
    # Registered before the step runs: a step whose result was lost (worker
    # crash, timeout) is still undone; undoing what never happened is a no-op.
    undo: Undo | None = None
    # Stopped by an accepted cancel rather than awaited (the charge, since
    # CANCELLABLE_CHARGE; see run_cancellable).
    cancellable: bool = False
