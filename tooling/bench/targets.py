"""Issue 16's targets, evaluated on one run: each met, or missed by how much.

Every target is a ratio between two figures of the same run, so it holds on
any machine (absolute figures differ twofold between two machines of one
kind; the ratios do not). Pure arithmetic on the run's rows (no I/O),
unit-tested on made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tooling.bench.results import EMPTY, IN_PROCESS, NOOP, SAGA, TOKEN, PhaseResult, VariantRow
from tooling.bench.stats import ratio


@dataclass(frozen=True)
class Target:
    """One target, as this run measured it."""

    goal: str
    value: str
    met: bool
    detail: str  # how far off when missed; the margin when met


MIN_SHARE_OF_NOOP = 0.8  # 1. saga throughput / (b)
MAX_SINGLE_P50_OVER_NOOP = 1.25  # 2. saga p50@1 / (b) p50@1
MAX_API_CPU_OVER_EMPTY = 2.0  # 3. API CPU per saga / (a)'s per request
MAX_EMPTY_API_CPU_OVER_TOKEN = 3.0  # 3. (a)'s API CPU / (e)'s
MAX_WORKER_CPU_OVER_NOOP = 1.3  # 4. worker CPU per saga / (b)'s
MAX_ACCEPT_P99_OVER_P50 = 2.0  # 5. accept p99 / p50 in the open loop
MIN_SHARE_OF_IN_PROCESS = 0.6  # 6. saga throughput / (f)
MAX_WORKER_RSS_MIB = 250.0  # kept from issue 6
OPEN_LOOP_SHARE = 0.7  # the open loop's rate, of the saga's closed-loop throughput


def _at_least(goal: str, value: float, minimum: float) -> Target:
    if math.isnan(value):
        return Target(goal, "-", False, "not measured")
    shown = f"{value:.2f}x"
    if value >= minimum:
        return Target(goal, shown, True, f"met ({value - minimum:+.2f}x of margin)")
    return Target(goal, shown, False, f"missed by {minimum - value:.2f}x")


def _at_most(goal: str, value: float, maximum: float) -> Target:
    if math.isnan(value):
        return Target(goal, "-", False, "not measured")
    shown = f"{value:.2f}x"
    if value <= maximum:
        return Target(goal, shown, True, f"met ({maximum - value:.2f}x of margin)")
    return Target(goal, shown, False, f"missed by {value - maximum:.2f}x")


def _below(goal: str, value: float, maximum: float, unit: str) -> Target:
    if math.isnan(value):
        return Target(goal, "-", False, "not measured")
    shown = f"{value:.1f} {unit}"
    if value < maximum:
        return Target(goal, shown, True, f"met ({maximum - value:.1f} {unit} of margin)")
    return Target(goal, shown, False, f"missed by {value - maximum:.1f} {unit}")


def _cpu(row: VariantRow | None, process: str) -> float:
    if row is None:
        return math.nan
    return row.cpu_seconds_per_saga.get(process, math.nan)


def evaluate_targets(
    rows: Sequence[VariantRow], open_loop: PhaseResult | None, worker_peak_mib: float
) -> list[Target]:
    """Issue 16's targets (and issue 6's memory bound), each met or missed by how much."""
    by_key = {row.variant: row for row in rows}
    saga, noop = by_key.get(SAGA.key), by_key.get(NOOP.key)
    empty, token, in_process = (
        by_key.get(EMPTY.key),
        by_key.get(TOKEN.key),
        by_key.get(IN_PROCESS.key),
    )
    nan = math.nan
    saga_tp = saga.throughput if saga else nan
    return [
        _at_least(
            f"1. saga throughput >= {MIN_SHARE_OF_NOOP} x (b)",
            ratio(saga_tp, noop.throughput if noop else nan),
            MIN_SHARE_OF_NOOP,
        ),
        _at_most(
            f"2. saga p50@1 <= {MAX_SINGLE_P50_OVER_NOOP} x (b) p50@1",
            ratio(saga.single.p50_ms if saga else nan, noop.single.p50_ms if noop else nan),
            MAX_SINGLE_P50_OVER_NOOP,
        ),
        _at_most(
            f"3. API CPU per saga <= {MAX_API_CPU_OVER_EMPTY:g} x (a)'s per request",
            ratio(_cpu(saga, "api"), _cpu(empty, "api")),
            MAX_API_CPU_OVER_EMPTY,
        ),
        _at_most(
            f"3. (a)'s API CPU per request <= {MAX_EMPTY_API_CPU_OVER_TOKEN:g} x (e)'s",
            ratio(_cpu(empty, "api"), _cpu(token, "api")),
            MAX_EMPTY_API_CPU_OVER_TOKEN,
        ),
        _at_most(
            f"4. worker CPU per saga <= {MAX_WORKER_CPU_OVER_NOOP} x (b)'s",
            ratio(_cpu(saga, "worker"), _cpu(noop, "worker")),
            MAX_WORKER_CPU_OVER_NOOP,
        ),
        _accept_target(open_loop, saga_tp),
        _at_least(
            f"6. saga throughput >= {MIN_SHARE_OF_IN_PROCESS} x (f)",
            ratio(saga_tp, in_process.throughput if in_process else nan),
            MIN_SHARE_OF_IN_PROCESS,
        ),
        _below(
            f"worker peak RSS < {MAX_WORKER_RSS_MIB:g} MiB",
            worker_peak_mib,
            MAX_WORKER_RSS_MIB,
            "MiB",
        ),
    ]


def _accept_target(open_loop: PhaseResult | None, saga_throughput: float) -> Target:
    goal = (
        f"5. accept p99 <= {MAX_ACCEPT_P99_OVER_P50:g} x accept p50 at {OPEN_LOOP_SHARE:.0%} "
        "of the sustainable rate"
    )
    if open_loop is None:
        return Target(goal, "-", False, "not measured")
    target = _at_most(
        goal, ratio(open_loop.latency.p99_ms, open_loop.latency.p50_ms), MAX_ACCEPT_P99_OVER_P50
    )
    rate = open_loop.target_rate
    share = ratio(rate if rate is not None else math.nan, saga_throughput)
    notes = [target.detail]
    if not math.isnan(share) and abs(share - OPEN_LOOP_SHARE) > 0.005:
        notes.append(f"measured at {share:.0%} of the closed-loop throughput (--rate)")
    if not open_loop.kept_up:
        notes.append("the stack did not keep up at that rate")
    met = target.met and bool(open_loop.kept_up)
    return Target(goal, target.value, met, "; ".join(notes))
