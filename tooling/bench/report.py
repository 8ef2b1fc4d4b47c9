"""A bench run's report: everything it found, as text for the terminal and as JSON.

Pure (no I/O), so the rendering is unit-tested on made-up figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tooling.bench import results, targets
from tooling.bench.actions import HistoryCost
from tooling.bench.books import Books, summarize
from tooling.bench.machine import Machine
from tooling.bench.profiling import ProfileFiles
from tooling.bench.results import OPEN, PROCESSES, PhaseResult, Ratio, VariantRow
from tooling.bench.targets import Target


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
    # Temporal's cost of one checkout (history events, billable actions), from
    # a sample of the run's sagas; None when none was read.
    temporal_cost: HistoryCost | None = None
    # With --profile: py-spy sampled the API and the worker during one phase,
    # and these are its files. Such a run's figures are disturbed.
    profile: ProfileFiles | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def profiled(self) -> bool:
        return self.profile is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["profiled"] = self.profiled
        for phase, raw in zip(self.phases, data["phases"], strict=True):
            raw["cpu_seconds_per_completed"] = phase.cpu_per_completed
            raw["statements_per_completed"] = {
                name: asdict(rate) for name, rate in phase.statements_per_completed.items()
            }
        for books, raw in zip(self.books, data["books"], strict=True):
            raw["ok"] = books.ok
        finite: dict[str, Any] = _finite(data)
        return finite


def build_report(
    config: dict[str, Any],
    machine: Machine,
    seconds: float,
    phases: list[PhaseResult],
    books: list[Books],
    *,
    temporal_cost: HistoryCost | None = None,
    profile: ProfileFiles | None = None,
) -> BenchReport:
    """The run's figures, ratios, targets and the problems that fail it."""
    rows = results.build_rows(phases)
    open_loop = next((p for p in phases if p.kind == OPEN), None)
    main_worker = max(
        (
            p.usage["worker"].peak_rss_mib
            for p in phases
            if p.variant != results.NAIVE.key and "worker" in p.usage
        ),
        default=float("nan"),
    )
    problems: list[str] = []
    for phase in phases:
        if phase.completed != phase.requested:
            label = f"{phase.variant} {phase.kind} @{phase.concurrency or 'rate'}"
            errors = "; ".join(phase.errors[:2]) or "not completed in time"
            problems.append(f"{label}: {phase.completed}/{phase.requested} completed ({errors})")
    for ledger in books:
        problems += summarize(ledger)
    return BenchReport(
        config=config,
        machine=machine,
        seconds=seconds,
        phases=phases,
        rows=rows,
        ratios=results.build_ratios(rows),
        targets=targets.evaluate_targets(rows, open_loop, main_worker),
        books=books,
        problems=problems,
        temporal_cost=temporal_cost,
        profile=profile,
    )


def _finite(value: Any) -> Any:
    """NaN (nothing measured) as JSON null, since JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


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


# The processes whose statements are counted, in the order the table shows them.
STATEMENT_PROCESSES = ("api", "worker")
STATEMENT_HEADERS = (
    "variant",
    *(header for name in STATEMENT_PROCESSES for header in (name, f"{name} txn")),
)


def statement_cells(row: VariantRow) -> list[str]:
    cells = [row.label]
    for name in STATEMENT_PROCESSES:
        rate = row.statements_per_request.get(name)
        cells += [
            _num(rate.statements if rate else None),
            _num(rate.transaction_control if rate else None),
        ]
    return cells


def statements_table(rows: Sequence[VariantRow]) -> list[str]:
    """The statements-per-request table, or nothing when no phase counted them."""
    counted = [row for row in rows if row.statements_per_request]
    if not counted:
        return []
    return [
        "",
        "DB statements per request at C (each a round trip; txn = of which BEGIN, COMMIT "
        "or ROLLBACK):",
        markdown_table(STATEMENT_HEADERS, [statement_cells(row) for row in counted]),
    ]


def profiled_note(profile: ProfileFiles) -> str:
    graphs = ", ".join(profile.flamegraphs.values())
    return (
        f"PROFILED: py-spy sampled {' and '.join(profile.flamegraphs)} {profile.during}; "
        "its reads take CPU beside them, so this run's figures are not comparable to an "
        f"unprofiled run's. Flame graphs: {graphs}; shares: {profile.summary}."
    )


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
    if (profile := report.profile) is not None:
        out.append(profiled_note(profile))
    out += statements_table(report.rows)
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
        "Targets (issue 16; each a ratio of two figures of this run):",
    ]
    for target in report.targets:
        mark = "met   " if target.met else "MISSED"
        out.append(f"  [{mark}] {target.goal}: {target.value} ({target.detail})")
    if (cost := report.temporal_cost) is not None:
        kinds = ", ".join(f"{kind} {n:.1f}" for kind, n in cost.actions_by_kind.items())
        out += [
            "",
            f"Temporal per checkout (mean of the sampled sagas, to confirmed and mailed): "
            f"{cost.events:.1f} history events, {cost.actions:.1f} billable actions ({kinds}).",
        ]
    out += ["", "Correctness:"]
    for books in report.books:
        verdict = "ok" if books.ok else "VIOLATIONS"
        out.append(f"  {books.stack}: {books.orders} orders checked, audit and books {verdict}")
    if report.problems:
        out += ["", "FAILED:"] + [f"  - {p}" for p in report.problems]
    out.append(f"\nThe run took {report.seconds:.0f} s.")
    return "\n".join(out)
