"""The full crash and fault matrix, with the figures for docs/RELIABILITY.md.

    .venv/bin/python -m tests.faults.fault_matrix --seeds 3 --repetitions 2

Each repetition runs every scenario of ``tests/faults/scenarios.py`` on one
fresh stack (its own PostgreSQL, Temporal dev server and worker processes):
a worker SIGKILLed at every fault point, a Temporal restart, a PostgreSQL
outage, payment outages short and long with flaky, hanging and declined
cards, the workflow-version change, and the race for the last units once per
seed. It prints one line per case and then the counts: cases run, faults
injected, orders, messages resent (the at-least-once price, from the audit),
violations. It exits 1 if there was any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

from tests.faults import scenarios
from tests.faults.stack import Counters, FaultStack, fault_stack

Case = Callable[[FaultStack], Awaitable[list[str]]]


def cases(seeds: int) -> list[tuple[str, Case]]:
    matrix: list[tuple[str, Case]] = []
    for point in scenarios.ALL_POINTS:
        matrix.append(
            (f"kill worker at {point}", partial(scenarios.kill_worker_at, point=point, orders=3))
        )
    matrix += [
        ("restart Temporal mid-batch", lambda s: scenarios.restart_temporal(s, orders=8)),
        ("stop PostgreSQL for 3 s", lambda s: scenarios.stop_postgres(s, orders=8)),
        ("payment outage 3 s", lambda s: scenarios.payment_trouble(s, outage_seconds=3.0)),
        (
            "payment outage past the deadline",
            lambda s: scenarios.payment_trouble(s, outage_seconds=12.0),
        ),
    ]
    matrix.append(("workflow version change", scenarios.upgrade_workflow))
    for seed in range(seeds):
        matrix.append(
            (
                f"race for the last units (seed {seed})",
                partial(scenarios.race_for_last_units, products=4, stock=3, buyers=8, seed=seed),
            )
        )
    return matrix


async def run(seeds: int, repetitions: int) -> Counters:
    total = Counters()
    for repetition in range(1, repetitions + 1):
        async with fault_stack() as stack:
            for name, case in cases(seeds):
                started = time.monotonic()
                before = len(stack.counters.violations)
                resent_before = stack.counters.resends
                try:
                    found = await case(stack)
                except Exception:  # a scenario that cannot finish is a violation too
                    found = [f"{name}: {traceback.format_exc(limit=3)}"]
                    stack.counters.violations += found
                took = time.monotonic() - started
                verdict = "ok" if not found else f"{len(found)} VIOLATIONS"
                # Which case a resend came from: the figure is only useful attributed.
                if resent := stack.counters.resends - resent_before:
                    verdict += f", {resent} resent"
                print(f"[{repetition}/{repetitions}] {name}: {verdict} ({took:.0f} s)", flush=True)
                for problem in stack.counters.violations[before:]:
                    print(f"    - {problem}", flush=True)
            total.cases += stack.counters.cases
            total.crashes += stack.counters.crashes
            total.orders += stack.counters.orders
            total.resends += stack.counters.resends
            total.violations += stack.counters.violations
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.fault_matrix", description=__doc__
    )
    parser.add_argument("--seeds", type=int, default=3, help="race scenarios per repetition")
    parser.add_argument("--repetitions", type=int, default=1, help="times to run the matrix")
    args = parser.parse_args()
    # Activities fail on purpose here; their tracebacks would drown the figures.
    logging.basicConfig(level=logging.ERROR)
    started = datetime.now(UTC)
    counts = asyncio.run(run(args.seeds, args.repetitions))
    minutes = (datetime.now(UTC) - started).total_seconds() / 60
    print(
        f"\nfault matrix {started:%Y-%m-%d %H:%M} UTC, --seeds {args.seeds} "
        f"--repetitions {args.repetitions}, {minutes:.0f} min\n"
        f"cases run:         {counts.cases}\n"
        f"faults injected:   {counts.crashes}\n"
        f"orders:            {counts.orders}\n"
        f"messages resent:   {counts.resends} (identical copies, same Message-ID)\n"
        f"violations:        {len(counts.violations)}",
        flush=True,
    )
    return 1 if counts.violations else 0


if __name__ == "__main__":
    code = main()
    # The SDK's Rust runtime can abort interpreter finalisation ("PyGILState_Release",
    # see shared NOTES) after all work is done; leave without it so the exit code is honest.
    sys.stdout.flush()
    os._exit(code)
