"""``ordersaga bench-median``: issue 16's targets judged on the median of several full runs.

One run's ratios move by about 15 % with the machine, so the targets are
judged on the median of three runs' JSON files (``ordersaga bench --out``).
Each file's figures are judged on today's targets (``targets.judge``), so
runs written by an older bench combine too. Reads files only: no stack is
started.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tooling.bench.report import markdown_table
from tooling.bench.targets import Target, figures_from_json, judge, median_of_runs


class RunFileError(ValueError):
    """A file that is not the JSON of an ``ordersaga bench`` run."""


def targets_of(path: Path) -> list[Target]:
    """The targets of one run's JSON file, judged on today's bounds."""
    try:
        return judge(figures_from_json(json.loads(path.read_text())))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise RunFileError(f"{path} is not the JSON of an ordersaga bench run") from err


def render_median(paths: Sequence[Path], runs: Sequence[Sequence[Target]]) -> str:
    """Each target in each run, its median, and whether the median meets it."""
    combined = median_of_runs(runs)
    headers = ("target", *(f"run {i}" for i in range(1, len(runs) + 1)), "median", "verdict")
    rows = [
        (
            median.goal,
            *(run[index].value for run in runs),
            median.value,
            ("met: " if median.met else "MISSED: ") + median.detail,
        )
        for index, median in enumerate(combined)
    ]
    listing = "\n".join(f"  run {i}: {path}" for i, path in enumerate(paths, start=1))
    return f"Issue 16's targets, median of {len(runs)} runs:\n{listing}\n\n" + markdown_table(
        headers, rows
    )
