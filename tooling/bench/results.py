"""What each phase and each variant of a bench run measured, and the ratios between them.

Pure data and arithmetic (no I/O), unit-tested on made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tooling.bench.sampling import Usage
from tooling.bench.statements import StatementCount, StatementRate
from tooling.bench.stats import Latency, ratio

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
TOKEN = Variant("token", "(e) token check only")
IN_PROCESS = Variant("inproc", "(f) 4 local no-ops, no HTTP")
VARIANTS = (SAGA, EMPTY, NOOP, FLOOR, NAIVE, TOKEN, IN_PROCESS)
# The ratios saga/X, in the order the issues ask for them.
CEILINGS = (NOOP, EMPTY, FLOOR, NAIVE, IN_PROCESS)
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
    # PostgreSQL statements per process (api, worker) during the phase; empty
    # when they were not counted.
    statements: dict[str, StatementCount] = field(default_factory=dict)

    @property
    def cpu_per_completed(self) -> dict[str, float]:
        """CPU seconds per completed request, per process."""
        return {
            name: (use.cpu_seconds / self.completed if self.completed else math.nan)
            for name, use in self.usage.items()
        }

    @property
    def statements_per_completed(self) -> dict[str, StatementRate]:
        """PostgreSQL statements per completed request, per process."""
        return {name: count.per(self.completed) for name, count in self.statements.items()}


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
    # PostgreSQL statements per completed request at C, per process; empty
    # when they were not counted.
    statements_per_request: dict[str, StatementRate] = field(default_factory=dict)


@dataclass(frozen=True)
class Ratio:
    """saga / ceiling: throughput, and time to done (p50) at concurrency 1 and at C."""

    ceiling: str
    throughput: float
    p50_single: float
    p50_loaded: float


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
                statements_per_request=loaded.statements_per_completed,
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
