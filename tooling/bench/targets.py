"""Issue 16's targets, evaluated on one run: each met, or missed by how much.

Every target is a ratio between two figures of the same run, so it holds on
any machine (absolute figures differ twofold between two machines of one
kind; the ratios do not). Pure arithmetic (no I/O) on the run's figures
(``Figures``), unit-tested on made-up ones; ``median_of_runs`` judges
several runs at once.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from tooling.bench.results import (
    EMPTY,
    IN_PROCESS,
    NAIVE,
    NOOP,
    SAGA,
    TOKEN,
    PhaseResult,
    VariantRow,
)
from tooling.bench.stats import ratio


@dataclass(frozen=True)
class Target:
    """One target, as this run measured it."""

    goal: str
    value: str
    met: bool
    detail: str  # how far off when missed; the margin when met
    # The figure and its bound as numbers, so that several runs can be
    # combined (``median_of_runs``); NaN when not measured.
    measured: float = math.nan
    bound: float = math.nan
    at_least: bool = False  # the figure must reach the bound (else stay under it)
    unit: str = "x"
    # A condition besides the figure (the open loop kept up), met or not.
    condition_met: bool = True


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
    def target(shown: str, met: bool, detail: str) -> Target:
        return Target(goal, shown, met, detail, value, minimum, at_least=True)

    if math.isnan(value):
        return target("-", False, "not measured")
    if value >= minimum:
        return target(f"{value:.2f}x", True, f"met ({value - minimum:+.2f}x of margin)")
    return target(f"{value:.2f}x", False, f"missed by {minimum - value:.2f}x")


def _at_most(goal: str, value: float, maximum: float) -> Target:
    def target(shown: str, met: bool, detail: str) -> Target:
        return Target(goal, shown, met, detail, value, maximum)

    if math.isnan(value):
        return target("-", False, "not measured")
    if value <= maximum:
        return target(f"{value:.2f}x", True, f"met ({maximum - value:.2f}x of margin)")
    return target(f"{value:.2f}x", False, f"missed by {value - maximum:.2f}x")


def _below(goal: str, value: float, maximum: float, unit: str) -> Target:
    def target(shown: str, met: bool, detail: str) -> Target:
        return Target(goal, shown, met, detail, value, maximum, unit=unit)

    if math.isnan(value):
        return target("-", False, "not measured")
    shown = f"{value:.1f} {unit}"
    if value < maximum:
        return target(shown, True, f"met ({maximum - value:.1f} {unit} of margin)")
    return target(shown, False, f"missed by {value - maximum:.1f} {unit}")


def _judge(goal: str, value: float, like: Target) -> Target:
    """``value`` judged against the bound of ``like`` (a target of the same goal)."""
    if like.unit != "x":
        return _below(goal, value, like.bound, like.unit)
    if like.at_least:
        return _at_least(goal, value, like.bound)
    return _at_most(goal, value, like.bound)


def median_of_runs(runs: Sequence[Sequence[Target]]) -> list[Target]:
    """Each target's median over several runs, met or missed by how much.

    Issue 16 judges the targets on the median of three full runs: one run's
    ratios move by about 15 % with the machine. A target whose condition
    besides its figure (the open loop keeping up) failed in any run is
    missed, whatever the median.
    """
    if not runs:
        raise ValueError("no runs to combine")
    goals = [t.goal for t in runs[0]]
    if any([t.goal for t in run] != goals for run in runs):
        raise ValueError("the runs were judged on different targets")
    combined = []
    for index, goal in enumerate(goals):
        of_goal = [run[index] for run in runs]
        values = [t.measured for t in of_goal if not math.isnan(t.measured)]
        judged = _judge(goal, statistics.median(values) if values else math.nan, of_goal[0])
        failed = sum(not t.condition_met for t in of_goal)
        if failed:
            judged = replace(
                judged,
                met=False,
                condition_met=False,
                detail=f"{judged.detail}; the stack did not keep up in {failed} of {len(runs)}",
            )
        combined.append(judged)
    return combined


@dataclass(frozen=True)
class Figures:
    """The figures of one run that the targets judge; NaN where not measured.

    Taken from a run in progress (``figures_of``) or from any run's JSON file
    (``figures_from_json``), so runs written before a target changed can
    still be judged on today's targets.
    """

    saga_throughput: float
    noop_throughput: float
    in_process_throughput: float
    saga_single_p50_ms: float
    noop_single_p50_ms: float
    saga_api_cpu: float
    empty_api_cpu: float
    token_api_cpu: float
    saga_worker_cpu: float
    noop_worker_cpu: float
    worker_peak_mib: float
    # The open loop: None when the run had none.
    accept_p50_ms: float = math.nan
    accept_p99_ms: float = math.nan
    open_rate: float = math.nan
    kept_up: bool | None = None


def figures_of(
    rows: Sequence[VariantRow], open_loop: PhaseResult | None, worker_peak_mib: float
) -> Figures:
    by_key = {row.variant: row for row in rows}

    def row_figure(key: str, read: Callable[[VariantRow], float]) -> float:
        row = by_key.get(key)
        return math.nan if row is None else read(row)

    def cpu(key: str, process: str) -> float:
        return row_figure(key, lambda r: r.cpu_seconds_per_saga.get(process, math.nan))

    figures = Figures(
        saga_throughput=row_figure(SAGA.key, lambda r: r.throughput),
        noop_throughput=row_figure(NOOP.key, lambda r: r.throughput),
        in_process_throughput=row_figure(IN_PROCESS.key, lambda r: r.throughput),
        saga_single_p50_ms=row_figure(SAGA.key, lambda r: r.single.p50_ms),
        noop_single_p50_ms=row_figure(NOOP.key, lambda r: r.single.p50_ms),
        saga_api_cpu=cpu(SAGA.key, "api"),
        empty_api_cpu=cpu(EMPTY.key, "api"),
        token_api_cpu=cpu(TOKEN.key, "api"),
        saga_worker_cpu=cpu(SAGA.key, "worker"),
        noop_worker_cpu=cpu(NOOP.key, "worker"),
        worker_peak_mib=worker_peak_mib,
    )
    if open_loop is None:
        return figures
    rate = open_loop.target_rate
    return replace(
        figures,
        accept_p50_ms=open_loop.latency.p50_ms,
        accept_p99_ms=open_loop.latency.p99_ms,
        open_rate=math.nan if rate is None else rate,
        kept_up=bool(open_loop.kept_up),
    )


def figures_from_json(report: dict[str, Any]) -> Figures:
    """The judged figures of a run's JSON file (``ordersaga bench --out``).

    Raises KeyError or TypeError when the file is not a bench run's.
    """
    rows = {row["variant"]: row for row in report["rows"]}

    def number(value: object) -> float:
        # JSON has no NaN: a figure not measured was written as null.
        return math.nan if value is None else float(cast(float, value))

    def row_figure(key: str, *path: str) -> float:
        value: Any = rows.get(key)
        for step in path:
            if value is None:
                return math.nan
            value = value.get(step)
        return number(value)

    # As build_report: the main stack's worker, at its peak over its phases.
    peaks = [
        number(row["peak_rss_mib"].get("worker"))
        for key, row in rows.items()
        if key != NAIVE.key and row["peak_rss_mib"].get("worker") is not None
    ]
    figures = Figures(
        saga_throughput=row_figure(SAGA.key, "throughput"),
        noop_throughput=row_figure(NOOP.key, "throughput"),
        in_process_throughput=row_figure(IN_PROCESS.key, "throughput"),
        saga_single_p50_ms=row_figure(SAGA.key, "single", "p50_ms"),
        noop_single_p50_ms=row_figure(NOOP.key, "single", "p50_ms"),
        saga_api_cpu=row_figure(SAGA.key, "cpu_seconds_per_saga", "api"),
        empty_api_cpu=row_figure(EMPTY.key, "cpu_seconds_per_saga", "api"),
        token_api_cpu=row_figure(TOKEN.key, "cpu_seconds_per_saga", "api"),
        saga_worker_cpu=row_figure(SAGA.key, "cpu_seconds_per_saga", "worker"),
        noop_worker_cpu=row_figure(NOOP.key, "cpu_seconds_per_saga", "worker"),
        worker_peak_mib=max(peaks, default=math.nan),
    )
    open_loop = next((p for p in report["phases"] if p["kind"] == "open"), None)
    if open_loop is None:
        return figures
    return replace(
        figures,
        accept_p50_ms=number(open_loop["latency"]["p50_ms"]),
        accept_p99_ms=number(open_loop["latency"]["p99_ms"]),
        open_rate=number(open_loop.get("target_rate")),
        kept_up=bool(open_loop.get("kept_up")),
    )


def evaluate_targets(
    rows: Sequence[VariantRow], open_loop: PhaseResult | None, worker_peak_mib: float
) -> list[Target]:
    """Issue 16's targets (and issue 6's memory bound), each met or missed by how much."""
    return judge(figures_of(rows, open_loop, worker_peak_mib))


def judge(f: Figures) -> list[Target]:
    """Each target of one run's figures, met or missed by how much."""
    return [
        _at_least(
            f"1. saga throughput >= {MIN_SHARE_OF_NOOP} x (b)",
            ratio(f.saga_throughput, f.noop_throughput),
            MIN_SHARE_OF_NOOP,
        ),
        _at_most(
            f"2. saga p50@1 <= {MAX_SINGLE_P50_OVER_NOOP} x (b) p50@1",
            ratio(f.saga_single_p50_ms, f.noop_single_p50_ms),
            MAX_SINGLE_P50_OVER_NOOP,
        ),
        _at_most(
            f"3. API CPU per saga <= {MAX_API_CPU_OVER_EMPTY:g} x (a)'s per request",
            ratio(f.saga_api_cpu, f.empty_api_cpu),
            MAX_API_CPU_OVER_EMPTY,
        ),
        _at_most(
            f"3. (a)'s API CPU per request <= {MAX_EMPTY_API_CPU_OVER_TOKEN:g} x (e)'s",
            ratio(f.empty_api_cpu, f.token_api_cpu),
            MAX_EMPTY_API_CPU_OVER_TOKEN,
        ),
        _at_most(
            f"4. worker CPU per saga <= {MAX_WORKER_CPU_OVER_NOOP} x (b)'s",
            ratio(f.saga_worker_cpu, f.noop_worker_cpu),
            MAX_WORKER_CPU_OVER_NOOP,
        ),
        _accept_target(f),
        _at_least(
            f"6. saga throughput >= {MIN_SHARE_OF_IN_PROCESS} x (f)",
            ratio(f.saga_throughput, f.in_process_throughput),
            MIN_SHARE_OF_IN_PROCESS,
        ),
        _below(
            f"worker peak RSS < {MAX_WORKER_RSS_MIB:g} MiB",
            f.worker_peak_mib,
            MAX_WORKER_RSS_MIB,
            "MiB",
        ),
    ]


def _accept_target(f: Figures) -> Target:
    goal = (
        f"5. accept p99 <= {MAX_ACCEPT_P99_OVER_P50:g} x accept p50 at {OPEN_LOOP_SHARE:.0%} "
        "of the sustainable rate"
    )
    if f.kept_up is None:
        return Target(goal, "-", False, "not measured")
    target = _at_most(goal, ratio(f.accept_p99_ms, f.accept_p50_ms), MAX_ACCEPT_P99_OVER_P50)
    share = ratio(f.open_rate, f.saga_throughput)
    notes = [target.detail]
    if not math.isnan(share) and abs(share - OPEN_LOOP_SHARE) > 0.005:
        notes.append(f"measured at {share:.0%} of the closed-loop throughput (--rate)")
    if not f.kept_up:
        notes.append("the stack did not keep up at that rate")
    return replace(
        target, met=target.met and f.kept_up, detail="; ".join(notes), condition_met=f.kept_up
    )
