"""``ordersaga bench-median``: the targets judged on the median of several runs' JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tooling.test_bench import _report
from tooling.bench.median import RunFileError, targets_of
from tooling.bench.targets import Target, median_of_runs
from tooling.cli import main

SHARE = "1. saga throughput >= 0.8 x (b)"
TAIL = "5. accept p99 <= 2 x accept p50"
RSS = "worker peak RSS < 250 MiB"


def _run(share: float, tail: float, rss: float, *, kept_up: bool = True) -> list[Target]:
    """One run's targets as the bench writes them (value and detail do not matter here)."""
    return [
        Target(SHARE, f"{share:.2f}x", share >= 0.8, "", share, 0.8, at_least=True),
        Target(TAIL, f"{tail:.2f}x", tail <= 2 and kept_up, "", tail, 2.0, condition_met=kept_up),
        Target(RSS, f"{rss:.1f} MiB", rss < 250, "", rss, 250.0, unit="MiB"),
    ]


def test_each_target_is_judged_on_its_median() -> None:
    runs = [_run(0.9, 2.5, 190), _run(0.7, 1.5, 260), _run(0.85, 1.9, 180)]
    share, tail, rss = median_of_runs(runs)
    assert (share.measured, share.met) == (0.85, True)  # one run missed; the median meets it
    assert (tail.measured, tail.met) == (1.9, True)
    assert (rss.measured, rss.met) == (190, True)


def test_a_median_past_its_bound_is_missed() -> None:
    share, tail, rss = median_of_runs([_run(0.4, 2.6, 251), _run(0.5, 2.1, 252), _run(0.9, 1, 1)])
    assert (share.measured, share.met) == (0.5, False)
    assert (tail.measured, tail.met) == (2.1, False)
    assert (rss.measured, rss.met) == (251, False)


def test_a_run_that_did_not_keep_up_misses_the_tail_whatever_its_median() -> None:
    runs = [_run(0.9, 1.5, 190), _run(0.9, 1.5, 190, kept_up=False), _run(0.9, 1.5, 190)]
    tail = median_of_runs(runs)[1]
    assert tail.measured == 1.5
    assert not tail.met and not tail.condition_met


def test_runs_of_other_targets_are_not_combined() -> None:
    with pytest.raises(ValueError):
        median_of_runs([_run(0.9, 1, 1), _run(0.9, 1, 1)[:2]])
    with pytest.raises(ValueError):
        median_of_runs([])


def _write(path: Path) -> Path:
    path.write_text(json.dumps(_report().to_json()))
    return path


def test_a_run_file_is_judged_on_the_figures_it_holds(tmp_path: Path) -> None:
    share, single = targets_of(_write(tmp_path / "run.json"))[:2]
    assert (share.measured, share.met) == (pytest.approx(40 / 45), True)  # saga / (b)
    assert (single.measured, single.met) == (pytest.approx(40 / 35), True)  # p50@1


def test_files_that_are_not_runs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "not.json").write_text("{")
    (tmp_path / "other.json").write_text(json.dumps({"targets": []}))
    (tmp_path / "list.json").write_text("[]")
    for name in ("not.json", "other.json", "list.json", "missing.json"):
        with pytest.raises(RunFileError):
            targets_of(tmp_path / name)


def test_the_command_prints_the_medians_and_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(_write(tmp_path / f"{n}.json")) for n in range(3)]
    assert main(["bench-median", *files]) == 0
    assert "0.89x" in capsys.readouterr().out  # saga / (b): 40 / 45 in each run
    (tmp_path / "bad.json").write_text("[]")
    assert main(["bench-median", *files, str(tmp_path / "bad.json")]) == 2
