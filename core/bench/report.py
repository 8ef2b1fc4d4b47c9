"""What a bench run found: phases, one row per variant, ratios, targets; as text and JSON.

Everything here is pure (no I/O), so the arithmetic and the rendering are
unit-tested on made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.bench.books import Books
from core.bench.machine import Machine
from core.bench.sampling import Usage
from core.bench.stats import Latency, ratio

# The processes of a stack, in the order the table shows them.
PROCESSES = ("api", "worker", "temporal", "postgres")


@dataclass(frozen=True)
class Variant:
    key: str
    label: str


SAGA = Variant("saga", "saga")
EMPTY = Variant("empty", "(a) empty workflow")
NOOP = Variant("noop", "(b) no-op activities")
FLOOR = Variant("floor", "(c) one transaction")
NAIVE = Variant("naive", "(d) naive saga")
VARIANTS = (SAGA, EMPTY, NOOP, FLOOR, NAIVE)
# The ratios saga/X, in the order the issue asks for them.
CEILINGS = (NOOP, EMPTY, FLOOR, NAIVE)
CLOSED = "closed"
OPEN = "open"


@dataclass(frozen=True)
class PhaseResult:
    """One measured loop of one variant."""

    variant: str
    kind: str  # CLOSED or OPEN
    concurrency: int  # clients in flight (closed loop); 0 for the open loop
    requested: int
    completed: int
    seconds: float  # first request sent -> last one completed
    throughput: float  # completed per second over `seconds`
    # Closed loop: request to done (for the sagas: to confirmed). Open loop:
    # request to the API's 202.
    latency: Latency
    usage: dict[str, Usage]
    # CPU seconds spent by programs outside the bench during the phase.
    other_cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few, verbatim
    target_rate: float | None = None  # open loop only
    kept_up: bool | None = None  # open loop: every saga completed within the grace
    max_send_lag_ms: float | None = None  # open loop: the load generator's own delay

    @property
    def cpu_per_completed(self) -> dict[str, float]:
        """CPU seconds per completed request, per process."""
        return {
            name: (use.cpu_seconds / self.completed if self.completed else math.nan)
            for name, use in self.usage.items()
        }


@dataclass(frozen=True)
class VariantRow:
    """The table's row of one variant."""

    variant: str
    label: str
    throughput: float  # closed loop at C
    loaded: Latency  # closed loop at C
    single: Latency  # closed loop at concurrency 1
    accept: Latency | None  # open loop, the saga only
    cpu_seconds_per_saga: dict[str, float]  # closed loop at C
    peak_rss_mib: dict[str, float]  # the largest of the variant's phases


@dataclass(frozen=True)
class Ratio:
    """saga / ceiling: throughput, and time to done (p50) at concurrency 1 and at C."""

    ceiling: str
    throughput: float
    p50_single: float
    p50_loaded: float


@dataclass(frozen=True)
class Target:
    """One of issue 6's targets, as this run measured it."""

    goal: str
    value: str
    met: bool
    detail: str  # how far off when missed; what the value is when met


@dataclass
class BenchReport:
    config: dict[str, Any]
    machine: Machine
    seconds: float
    phases: list[PhaseResult]
    rows: list[VariantRow]
    ratios: list[Ratio]
    targets: list[Target]
    books: list[Books]
    problems: list[str]  # what makes the run fail (exit 1)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        for phase, raw in zip(self.phases, data["phases"], strict=True):
            raw["cpu_seconds_per_completed"] = phase.cpu_per_completed
        for books, raw in zip(self.books, data["books"], strict=True):
            raw["ok"] = books.ok
        finite: dict[str, Any] = _finite(data)
        return finite


def _finite(value: Any) -> Any:
    """NaN (nothing measured) as JSON null, since JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- rows, ratios, targets ---------------------------------------------------


def _phase(phases: Iterable[PhaseResult], variant: str, kind: str, single: bool) -> PhaseResult:
    for phase in phases:
        if phase.variant == variant and phase.kind == kind:
            if kind == OPEN or (phase.concurrency == 1) == single:
                return phase
    raise KeyError(f"no {kind} phase of {variant} (single={single})")


def build_rows(phases: Sequence[PhaseResult]) -> list[VariantRow]:
    """One row per variant that has both closed loops (at C and at 1)."""
    rows: list[VariantRow] = []
    for variant in VARIANTS:
        try:
            loaded = _phase(phases, variant.key, CLOSED, single=False)
            single = _phase(phases, variant.key, CLOSED, single=True)
        except KeyError:
            continue
        try:
            accept: Latency | None = _phase(phases, variant.key, OPEN, single=False).latency
        except KeyError:
            accept = None
        peaks: dict[str, float] = {}
        for phase in phases:
            if phase.variant == variant.key:
                for name, use in phase.usage.items():
                    peaks[name] = max(peaks.get(name, 0.0), use.peak_rss_mib)
        rows.append(
            VariantRow(
                variant=variant.key,
                label=variant.label,
                throughput=loaded.throughput,
                loaded=loaded.latency,
                single=single.latency,
                accept=accept,
                cpu_seconds_per_saga=loaded.cpu_per_completed,
                peak_rss_mib=peaks,
            )
        )
    return rows


def build_ratios(rows: Sequence[VariantRow]) -> list[Ratio]:
    by_key = {row.variant: row for row in rows}
    saga = by_key.get(SAGA.key)
    if saga is None:
        return []
    return [
        Ratio(
            ceiling=ceiling.label,
            throughput=ratio(saga.throughput, row.throughput),
            p50_single=ratio(saga.single.p50_ms, row.single.p50_ms),
            p50_loaded=ratio(saga.loaded.p50_ms, row.loaded.p50_ms),
        )
        for ceiling in CEILINGS
        if (row := by_key.get(ceiling.key)) is not None
    ]


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


# Other programs may use this share of one core on average before the
# report warns that the machine was not quiet.
QUIET_MACHINE_SHARE = 0.05


def disturbance(phases: Sequence[PhaseResult]) -> str | None:
    """A warning when other programs used the machine during the measured phases."""
    seconds = sum(p.seconds for p in phases)
    if seconds <= 0:
        return None
    share = sum(p.other_cpu_seconds for p in phases) / seconds
    if share < QUIET_MACHINE_SHARE:
        return None
    worst = max(phases, key=lambda p: p.other_cpu_seconds / p.seconds if p.seconds else 0.0)
    worst_share = worst.other_cpu_seconds / worst.seconds if worst.seconds else 0.0
    return (
        f"WARNING: other programs used {share:.0%} of a core on average while the bench "
        f"measured (up to {worst_share:.0%} during {worst.variant} {worst.kind} "
        f"@{worst.concurrency or 'rate'}); these figures are disturbed: rerun on a quiet machine."
    )


# --- text ----------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    # Sub-10 ms figures keep a decimal; above, the decimal is noise.
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


TABLE_HEADERS = (
    "variant",
    "sagas/s",
    "p50@C",
    "p99@C",
    "p50@1",
    "p99@1",
    "acc p50",
    "acc p99",
    *(f"cpu {name}" for name in PROCESSES),
    *(f"rss {name}" for name in PROCESSES),
)


def table_cells(row: VariantRow) -> list[str]:
    accept = row.accept
    return [
        row.label,
        _num(row.throughput),
        _ms(row.loaded.p50_ms),
        _ms(row.loaded.p99_ms),
        _ms(row.single.p50_ms),
        _ms(row.single.p99_ms),
        _ms(accept.p50_ms if accept else None),
        _ms(accept.p99_ms if accept else None),
        *(_ms(row.cpu_seconds_per_saga.get(name, math.nan) * 1000) for name in PROCESSES),
        *(_num(row.peak_rss_mib.get(name), 0) for name in PROCESSES),
    ]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, padded so it also reads well on a terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def render(report: BenchReport) -> str:
    """The whole report for the terminal: table, ratios, machine, targets, correctness."""
    c = report.config
    out = [
        markdown_table(TABLE_HEADERS, [table_cells(row) for row in report.rows]),
        "",
        f"C = {c['concurrency']} clients in flight; times in ms; acc = API accept (open loop "
        "at the rate below); cpu = CPU ms per completed saga at C, per process tree; "
        "rss = peak resident MiB.",
    ]
    open_loop = next((p for p in report.phases if p.kind == OPEN), None)
    if open_loop is not None:
        out.append(
            f"Open loop: {_num(open_loop.target_rate)} orders/s for {c['open_seconds']:g} s, "
            f"{open_loop.completed}/{open_loop.requested} completed at "
            f"{_num(open_loop.throughput)}/s, "
            f"{'kept up' if open_loop.kept_up else 'DID NOT KEEP UP'}."
        )
    if (warning := disturbance(report.phases)) is not None:
        out.append(warning)
    out += ["", "Ratios saga / ceiling (throughput: higher is better; time: lower is better):"]
    ratio_rows = [
        [r.ceiling, _num(r.throughput, 2), _num(r.p50_single, 2), _num(r.p50_loaded, 2)]
        for r in report.ratios
    ]
    out.append(markdown_table(("ceiling", "throughput", "p50 time @1", "p50 time @C"), ratio_rows))
    m = report.machine
    out += [
        "",
        f"Machine: {m.cpu_model}, {m.logical_cores} logical cores, {m.ram_gib:.1f} GiB RAM; "
        f"{m.os}; Python {m.python}; {m.temporal_cli}.",
        "",
        "Targets (issue 6):",
    ]
    for target in report.targets:
        mark = "met   " if target.met else "MISSED"
        out.append(f"  [{mark}] {target.goal}: {target.value} ({target.detail})")
    out += ["", "Correctness:"]
    for books in report.books:
        verdict = "ok" if books.ok else "VIOLATIONS"
        out.append(f"  {books.stack}: {books.orders} orders checked, audit and books {verdict}")
    if report.problems:
        out += ["", "FAILED:"] + [f"  - {p}" for p in report.problems]
    out.append(f"\nThe run took {report.seconds:.0f} s.")
    return "\n".join(out)
