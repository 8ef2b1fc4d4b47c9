"""``ordersaga bench``: its arithmetic and rendering, and one quick run end to end.

The quick run asserts only that the bench runs, measures every variant in
full and finds the books balanced: timings depend on the machine and on what
else runs, so no test asserts on them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.bench import report, results
from tooling.bench.books import Books
from tooling.bench.config import QUICK
from tooling.bench.machine import Machine
from tooling.bench.profiling import ProfileFiles
from tooling.bench.report import BenchReport, markdown_table, render
from tooling.bench.results import CLOSED, OPEN, PhaseResult, build_ratios, build_rows
from tooling.bench.sampling import Usage
from tooling.bench.shop import Shop, ShopProduct
from tooling.bench.stats import Latency, percentile, rate, ratio
from tooling.bench.targets import evaluate_targets, figures_from_json, judge
from tooling.cli import build_parser

REPO = Path(__file__).resolve().parents[2]

# --- stats -----------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 99) == pytest.approx(39.7)
    # Unsorted input gives the same answer.
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 25.0


def test_percentile_of_one_value_and_of_none() -> None:
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_percentile_refuses_a_rank_outside_0_to_100() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_is_summarized_in_milliseconds() -> None:
    latency = Latency.of([0.010, 0.020, 0.030])
    assert latency.count == 3
    assert latency.p50_ms == pytest.approx(20.0)
    assert latency.mean_ms == pytest.approx(20.0)
    assert latency.max_ms == pytest.approx(30.0)
    assert math.isnan(Latency.of([]).p50_ms)


def test_rate_and_ratio_never_divide_by_zero() -> None:
    assert rate(10, 2.0) == 5.0
    assert rate(0, 2.0) == 0.0
    assert rate(5, 0.0) == 0.0
    assert ratio(3.0, 4.0) == 0.75
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


# --- rows, ratios, targets ------------------------------------------------------


def _usage(cpu: float = 1.0, rss: float = 100.0) -> dict[str, Usage]:
    return {name: Usage(cpu, rss) for name in results.PROCESSES}


def _phase(
    variant: str,
    concurrency: int,
    throughput: float,
    p50_seconds: float,
    *,
    kind: str = CLOSED,
    completed: int = 100,
    usage: dict[str, Usage] | None = None,
    **extra: object,
) -> PhaseResult:
    return PhaseResult(
        variant=variant,
        kind=kind,
        concurrency=concurrency,
        requested=completed,
        completed=completed,
        seconds=completed / throughput,
        throughput=throughput,
        latency=Latency.of([p50_seconds] * 3),
        usage=usage or _usage(),
        **extra,  # type: ignore[arg-type]
    )


def _phases(*, saga_throughput: float = 40.0, saga_single: float = 0.040) -> list[PhaseResult]:
    return [
        _phase("saga", 16, saga_throughput, 0.300),
        _phase(
            "saga",
            0,
            saga_throughput,
            0.020,
            kind=OPEN,
            target_rate=0.7 * saga_throughput,
            kept_up=True,
        ),
        _phase("saga", 1, 20.0, saga_single),
        _phase("empty", 16, 100.0, 0.100),
        _phase("empty", 1, 50.0, 0.015),
        _phase("noop", 16, 45.0, 0.200),
        _phase("noop", 1, 30.0, 0.035),
        _phase("floor", 16, 500.0, 0.020),
        _phase("floor", 1, 200.0, 0.004),
        _phase("naive", 16, 25.0, 0.500, usage=_usage(rss=400.0)),
        _phase("naive", 1, 4.0, 0.250),
        _phase("token", 16, 800.0, 0.010),
        _phase("token", 1, 300.0, 0.003),
        _phase("inproc", 16, 50.0, 0.150),
        _phase("inproc", 1, 40.0, 0.025),
    ]


def test_each_variant_gets_one_row_from_its_phases() -> None:
    rows = build_rows(_phases())
    assert [r.label for r in rows] == [v.label for v in results.VARIANTS]
    saga = rows[0]
    assert saga.throughput == 40.0
    assert saga.loaded.p50_ms == pytest.approx(300.0)
    assert saga.single.p50_ms == pytest.approx(40.0)
    assert saga.accept is not None and saga.accept.p50_ms == pytest.approx(20.0)
    # CPU per saga comes from the loaded phase: 1 CPU second over 100 sagas.
    assert saga.cpu_seconds_per_saga["worker"] == pytest.approx(0.01)
    assert rows[1].accept is None  # only the saga runs an open loop


def test_ratios_divide_the_saga_by_each_ceiling() -> None:
    ratios = {r.ceiling: r for r in build_ratios(build_rows(_phases()))}
    assert list(ratios) == [v.label for v in results.CEILINGS]
    noop = ratios[results.NOOP.label]
    assert noop.throughput == pytest.approx(40.0 / 45.0)
    assert noop.p50_single == pytest.approx(40.0 / 35.0)
    assert ratios[results.NAIVE.label].throughput == pytest.approx(40.0 / 25.0)


def test_targets_are_met_with_their_margin() -> None:
    phases = _phases()
    rows = build_rows(phases)
    open_loop = next(p for p in phases if p.kind == OPEN)
    targets = evaluate_targets(rows, open_loop, worker_peak_mib=120.0)
    assert len(targets) == 8
    assert all(t.met for t in targets), [t for t in targets if not t.met]
    assert targets[0].value == "0.89x"
    assert targets[6].value == "0.80x"  # saga / (f): 40 / 50


def test_missed_targets_say_by_how_much() -> None:
    phases = _phases(saga_throughput=20.0, saga_single=0.090)
    rows = build_rows(phases)
    open_loop = next(p for p in phases if p.kind == OPEN)
    targets = evaluate_targets(rows, open_loop, worker_peak_mib=300.0)
    by_goal = {t.goal: t for t in targets}
    share = by_goal["1. saga throughput >= 0.8 x (b)"]
    assert not share.met
    assert share.detail == f"missed by {0.8 - 20 / 45:.2f}x"
    single = by_goal["2. saga p50@1 <= 1.25 x (b) p50@1"]
    assert not single.met and single.detail == f"missed by {90 / 35 - 1.25:.2f}x"
    assert not by_goal["6. saga throughput >= 0.6 x (f)"].met  # 20 / 50
    assert not by_goal["worker peak RSS < 250 MiB"].met


def test_cpu_targets_compare_the_api_and_the_worker_with_their_ceilings() -> None:
    # The saga's API spends 3x what (a) does per request, and (a) 4x what (e)
    # does; the worker spends 1.2x (b)'s: the API targets miss, the worker's holds.
    def usage(api: float, worker: float) -> dict[str, Usage]:
        return {**_usage(), "api": Usage(api, 100.0), "worker": Usage(worker, 100.0)}

    costs = {"saga": (3.0, 1.2), "empty": (1.0, 1.0), "noop": (1.0, 1.0), "token": (0.25, 1.0)}
    phases = [
        dataclasses.replace(p, usage=usage(*costs[p.variant])) if p.variant in costs else p
        for p in _phases()
    ]
    targets = {t.goal: t for t in evaluate_targets(build_rows(phases), None, 100.0)}
    api = targets["3. API CPU per saga <= 2 x (a)'s per request"]
    assert not api.met and api.value == "3.00x"
    empty = targets["3. (a)'s API CPU per request <= 3 x (e)'s"]
    assert not empty.met and empty.value == "4.00x"
    worker = targets["4. worker CPU per saga <= 1.3 x (b)'s"]
    assert worker.met and worker.value == "1.20x"


def test_the_accept_tail_is_judged_against_its_own_median() -> None:
    phases = _phases()
    open_loop = next(p for p in phases if p.kind == OPEN)
    # p50 20 ms, p99 just under 100 ms: a tail of about 5x the median.
    tail = dataclasses.replace(open_loop, latency=Latency.of([0.020] * 98 + [0.100] * 2))
    accept = evaluate_targets(build_rows(phases), tail, worker_peak_mib=100.0)[5]
    assert not accept.met
    assert float(accept.value.rstrip("x")) > 2.0


def test_an_open_loop_that_did_not_keep_up_misses_the_accept_target() -> None:
    phases = _phases()
    open_loop = next(p for p in phases if p.kind == OPEN)
    lagging = dataclasses.replace(open_loop, kept_up=False)
    targets = evaluate_targets(build_rows(phases), lagging, worker_peak_mib=100.0)
    accept = targets[5]
    assert not accept.met
    assert "did not keep up" in accept.detail


def test_targets_without_a_measurement_are_missed_not_met() -> None:
    targets = evaluate_targets([], None, worker_peak_mib=math.nan)
    assert not any(t.met for t in targets)
    assert {t.detail for t in targets} == {"not measured"}


def test_a_busy_machine_is_called_out_and_a_quiet_one_is_not() -> None:
    quiet = _phases()
    assert report.disturbance(quiet) is None
    busy = [dataclasses.replace(p, other_cpu_seconds=p.seconds * 0.5) for p in quiet]
    warning = report.disturbance(busy)
    assert warning is not None and "used 50% of a core" in warning


# --- rendering ---------------------------------------------------------------------


def test_markdown_table_pads_columns_and_right_aligns_numbers() -> None:
    text = markdown_table(("name", "n"), [["a", "1"], ["longer", "123"]])
    lines = text.splitlines()
    assert lines[0] == "| name   |   n |"
    assert lines[1] == "|--------|----:|"
    assert lines[3] == "| longer | 123 |"
    assert len({len(line) for line in lines}) == 1


def _report(problems: list[str] | None = None) -> BenchReport:
    phases = _phases()
    rows = build_rows(phases)
    open_loop = next(p for p in phases if p.kind == OPEN)
    return BenchReport(
        config={"concurrency": 16, "open_seconds": 20.0},
        machine=Machine("Test CPU", 2, 1, 4.0, "Linux", "3.11.7", "temporal version 1.9.1"),
        seconds=123.0,
        phases=phases,
        rows=rows,
        ratios=build_ratios(rows),
        targets=evaluate_targets(rows, open_loop, worker_peak_mib=120.0),
        books=[
            Books("main", orders=10),
            Books("naive", orders=5, problems=["order x: 2 captures"]),
        ],
        problems=problems or [],
    )


def test_a_runs_json_judged_again_gives_the_targets_the_run_printed() -> None:
    # ordersaga bench-median judges files, possibly from an older bench, on
    # the figures they hold: the same figures must give the same verdicts.
    run = _report()
    again = judge(figures_from_json(run.to_json()))
    assert [(t.goal, t.value, t.met) for t in again[:-1]] == [
        (t.goal, t.value, t.met) for t in run.targets[:-1]
    ]
    # The memory bound reads the main stack's worker only: not the naive one's 400 MiB.
    assert again[-1].measured == 100.0


def test_the_rendered_report_has_every_part() -> None:
    text = render(_report(problems=["naive books: order x: 2 captures"]))
    for variant in results.VARIANTS:
        assert variant.label in text
    assert "Ratios saga / ceiling" in text
    assert "Test CPU, 2 logical cores" in text
    assert "[met   ] 1. saga throughput >= 0.8 x (b)" in text
    assert "naive: 5 orders checked, audit and books VIOLATIONS" in text
    assert "FAILED:" in text


def test_the_json_has_no_nan_and_says_whether_the_run_passed() -> None:
    data = _report().to_json()
    text = json.dumps(data, allow_nan=False)  # raises on a NaN left behind
    assert data["ok"] is True
    assert data["profiled"] is False and data["profile"] is None
    assert data["books"][1]["ok"] is False
    assert data["phases"][0]["cpu_seconds_per_completed"]["api"] == pytest.approx(0.01)
    assert "NaN" not in text


def test_a_profiled_run_says_so_and_where_its_files_are() -> None:
    profile = ProfileFiles(
        during="during the saga closed loop at C = 16",
        summary="/p/summary.txt",
        flamegraphs={"api": "/p/api.svg", "worker": "/p/worker.svg"},
        stacks={"api": "/p/api.txt", "worker": "/p/worker.txt"},
    )
    profiled = dataclasses.replace(_report(), profile=profile)
    data = json.loads(json.dumps(profiled.to_json()))
    assert data["profiled"] is True
    assert data["profile"]["flamegraphs"] == {"api": "/p/api.svg", "worker": "/p/worker.svg"}
    assert data["profile"]["summary"] == "/p/summary.txt"
    text = render(profiled)
    for path in ("/p/api.svg", "/p/worker.svg", "/p/summary.txt"):
        assert path in text
    assert not any(path in render(_report()) for path in ("/p/api.svg", "/p/summary.txt"))


# --- small parts ---------------------------------------------------------------------


def test_orders_spread_over_the_catalog_and_the_customers() -> None:
    products = tuple(ShopProduct(f"p{n}", f"SKU-{n}", 100, 10) for n in range(3))
    shop = Shop(products, ("t0", "t1"))
    first, last = shop.order_body(0), shop.order_body(2)
    assert [line["product_id"] for line in first["items"]] == ["p0", "p1"]
    assert [line["product_id"] for line in last["items"]] == ["p2", "p0"]
    assert shop.headers(3) == {"Authorization": "Bearer t1"}


def test_progress_writes_one_line_per_phase_off_a_terminal() -> None:
    from tooling.bench.driver import Progress

    stream = io.StringIO()
    progress = Progress(stream)
    progress.start("saga @16", 3)
    for _ in range(3):
        progress.advance()
    progress.finish("3/3 done")
    assert stream.getvalue() == "ordersaga bench: saga @16: 3/3 done\n"


def test_bench_flags_are_parsed_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["bench", "--quick", "--orders", "50", "--concurrency", "8", "--rate", "12.5"]
    )
    assert (args.quick, args.orders, args.concurrency, args.rate) == (True, 50, 8, 12.5)
    assert args.profile is None
    profiled = build_parser().parse_args(["bench", "--profile", "docs/perf/after"])
    assert profiled.profile == Path("docs/perf/after")
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["bench", "--orders", "0"])
    assert exited.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


# --- one quick run, end to end ------------------------------------------------------------


def _temporal_on_path() -> dict[str, str]:
    """The environment for the run, with the `temporal` binary found as the suite finds it."""
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        pytest.exit("temporal is not installed: run the tests through `make test`", returncode=3)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORDERSAGA_", "TEMPORAL_")) and k != "DATABASE_URL"
    }
    env["PATH"] = os.pathsep.join([str(Path(found).parent), env.get("PATH", "")])
    return env


def test_a_quick_run_measures_every_variant_and_the_books_balance(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tooling.cli", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        env=_temporal_on_path(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = json.loads(out.read_text())
    assert found["ok"] is True
    closed = [p for p in found["phases"] if p["kind"] == CLOSED]
    measured = {(p["variant"], p["concurrency"] == 1) for p in closed}
    assert measured == {(v.key, single) for v in results.VARIANTS for single in (True, False)}
    open_loops = [p for p in found["phases"] if p["kind"] == OPEN]
    assert len(open_loops) == 1
    for phase in found["phases"]:
        assert phase["completed"] == phase["requested"] > 0, phase
    assert [b["stack"] for b in found["books"]] == ["main", "naive"]
    for books in found["books"]:
        assert books["ok"], books
        assert books["orders"] > 0
    assert {row["variant"] for row in found["rows"]} == {v.key for v in results.VARIANTS}
    # The Temporal cost of a checkout, read from the run's own saga histories.
    cost = found["temporal_cost"]
    assert cost["actions_by_kind"]["workflow started"] == 1
    assert cost["actions"] >= cost["actions_by_kind"]["activity attempts"] >= 2
    assert cost["events"] > cost["actions"]
    assert "Ratios saga / ceiling" in done.stdout
    assert found["profiled"] is False
    # PostgreSQL statements per request, by the role each process connects as:
    # the API writes the order (in autocommit: no transaction control); the
    # saga's worker runs its steps' statements, one of them (the reserve) a
    # transaction opened and closed. The bench's own queries (waiting for
    # each saga's mail, the books) are nobody's.
    by_phase = {(p["variant"], p["kind"], p["concurrency"]): p for p in found["phases"]}
    c = QUICK.concurrency
    saga = by_phase["saga", CLOSED, c]["statements_per_completed"]
    assert saga["api"]["statements"] > 0
    assert saga["worker"]["statements"] > saga["worker"]["transaction_control"] > 0
    assert by_phase["empty", CLOSED, c]["statements"]["worker"]["statements"] == 0
    assert by_phase["inproc", CLOSED, c]["statements"] == {
        "api": {"statements": 0, "transaction_control": 0},
        "worker": {"statements": 0, "transaction_control": 0},
    }
    saga_row = next(row for row in found["rows"] if row["variant"] == "saga")
    assert saga_row["statements_per_request"] == saga
