"""Issue 6's targets, evaluated on one run: each met, or missed by how much.

Pure arithmetic on the run's rows (no I/O), unit-tested on made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tooling.bench.results import NAIVE, NOOP, SAGA, PhaseResult, VariantRow
from tooling.bench.stats import ratio


@dataclass(frozen=True)
class Target:
    """One of issue 6's targets, as this run measured it."""

    goal: str
    value: str
    met: bool
    detail: str  # how far off when missed; what the value is when met


# Issue 6's targets on the 2-core development machine.
MIN_SHARE_OF_NOOP = 0.8
MIN_TIMES_NAIVE_THROUGHPUT = 1.4
MAX_SINGLE_P50_MS = 60.0
MIN_TIMES_FASTER_THAN_NAIVE = 4.0
MAX_ACCEPT_P99_MS = 50.0
OPEN_LOOP_SHARE = 0.7  # of the saga's closed-loop throughput
MAX_WORKER_RSS_MIB = 250.0


def _at_least(goal: str, value: float, minimum: float, unit: str) -> Target:
    shown = f"{value:.2f}{unit}"
    if math.isnan(value):
        return Target(goal, "-", False, "not measured")
    if value >= minimum:
        return Target(goal, shown, True, f"met ({value - minimum:+.2f}{unit} of margin)")
    return Target(goal, shown, False, f"missed by {minimum - value:.2f}{unit}")


def _below(goal: str, value: float, maximum: float, unit: str) -> Target:
    shown = f"{value:.1f} {unit}"
    if math.isnan(value):
        return Target(goal, "-", False, "not measured")
    if value < maximum:
        return Target(goal, shown, True, f"met ({maximum - value:.1f} {unit} of margin)")
    return Target(goal, shown, False, f"missed by {value - maximum:.1f} {unit}")


def evaluate_targets(
    rows: Sequence[VariantRow], open_loop: PhaseResult | None, worker_peak_mib: float
) -> list[Target]:
    """Issue 6's targets, each met or missed by how much."""
    by_key = {row.variant: row for row in rows}
    saga, noop, naive = by_key.get(SAGA.key), by_key.get(NOOP.key), by_key.get(NAIVE.key)
    nan = math.nan
    saga_tp = saga.throughput if saga else nan
    saga_p50 = saga.single.p50_ms if saga else nan
    targets = [
        _at_least(
            f"saga throughput >= {MIN_SHARE_OF_NOOP} x (b)",
            ratio(saga_tp, noop.throughput if noop else nan),
            MIN_SHARE_OF_NOOP,
            "x",
        ),
        _at_least(
            f"saga throughput >= {MIN_TIMES_NAIVE_THROUGHPUT} x (d)",
            ratio(saga_tp, naive.throughput if naive else nan),
            MIN_TIMES_NAIVE_THROUGHPUT,
            "x",
        ),
        _below(
            f"time to confirmed p50 at 1 < {MAX_SINGLE_P50_MS:g} ms",
            saga_p50,
            MAX_SINGLE_P50_MS,
            "ms",
        ),
        _at_least(
            f"time to confirmed p50 at 1 >= {MIN_TIMES_FASTER_THAN_NAIVE:g} x faster than (d)",
            ratio(naive.single.p50_ms if naive else nan, saga_p50),
            MIN_TIMES_FASTER_THAN_NAIVE,
            "x",
        ),
        _accept_target(open_loop, saga_tp),
        _below(
            f"worker peak RSS < {MAX_WORKER_RSS_MIB:g} MiB",
            worker_peak_mib,
            MAX_WORKER_RSS_MIB,
            "MiB",
        ),
    ]
    return targets


def _accept_target(open_loop: PhaseResult | None, saga_throughput: float) -> Target:
    goal = (
        f"API accept p99 < {MAX_ACCEPT_P99_MS:g} ms at {OPEN_LOOP_SHARE:.0%} "
        "of the sustainable rate"
    )
    if open_loop is None:
        return Target(goal, "-", False, "not measured")
    target = _below(goal, open_loop.latency.p99_ms, MAX_ACCEPT_P99_MS, "ms")
    rate = open_loop.target_rate
    share = ratio(rate if rate is not None else math.nan, saga_throughput)
    notes = [target.detail]
    if not math.isnan(share) and abs(share - OPEN_LOOP_SHARE) > 0.005:
        notes.append(f"measured at {share:.0%} of the closed-loop throughput (--rate)")
    if not open_loop.kept_up:
        notes.append("the stack did not keep up at that rate")
    met = target.met and bool(open_loop.kept_up)
    return Target(goal, target.value, met, "; ".join(notes))
