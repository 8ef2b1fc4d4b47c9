"""``ordersaga bench``: the entry point: a directory to run in, Ctrl-C, the JSON file.

The run itself (stacks, phases, books) is ``tooling.bench.phases.BenchRun``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.settings import Settings
from tooling.bench.config import QUICK, BenchConfig
from tooling.bench.driver import Progress
from tooling.bench.phases import BenchRun, Profiling
from tooling.bench.processes import BenchError
from tooling.bench.profiling import find_py_spy
from tooling.bench.report import BenchReport

__all__ = ["QUICK", "BenchConfig", "BenchError", "run_bench"]


def prepare_data_dir(data_dir: Path | None) -> tuple[Path, bool]:
    """The run's directory, and whether it is a temporary one the bench owns."""
    if data_dir is None:
        # Short: PostgreSQL's unix socket path lives inside it.
        return Path(tempfile.mkdtemp(prefix="ordersaga-bench-")), True
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BenchError(
            f"{data_dir} is not empty; give the bench a new or empty --data-dir", exit_code=2
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, False


def prepare_profiling(directory: Path) -> Profiling:
    """py-spy and the directory for its files, checked before anything starts.

    A missing py-spy or an unusable directory must not cost a stack's start-up.
    """
    py_spy = find_py_spy()
    directory = directory.resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BenchError(f"--profile {directory}: {err.strerror}", exit_code=2) from None
    return Profiling(py_spy, directory)


async def _run_until_interrupted(
    work: Callable[[], Awaitable[BenchReport]], progress: Progress
) -> BenchReport:
    """Run ``work``; Ctrl-C or SIGTERM cancels it (its teardown still runs).

    Raises KeyboardInterrupt once it is cancelled, so the CLI exits with 130.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work())
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            progress.note("interrupted: stopping the stack (this takes a few seconds)")
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_bench(
    config: BenchConfig,
    settings: Settings,
    *,
    data_dir: Path | None,
    out: Path | None,
    profile_dir: Path | None = None,
) -> tuple[BenchReport, Path]:
    """Run the whole bench; the report and where its JSON was written.

    ``profile_dir``: py-spy's flame graphs of the API and the worker go there.
    Raises BenchError when the stack cannot run, KeyboardInterrupt on Ctrl-C.
    """
    profiling = prepare_profiling(profile_dir) if profile_dir is not None else None
    directory, temporary = prepare_data_dir(data_dir)
    out = out or (Path.cwd() if temporary else directory) / "bench-results.json"
    progress = Progress()
    # A temporary directory is removed unless the run failed: then its logs
    # are what tells why.
    keep = True
    try:
        bench = BenchRun(config, settings, directory, progress, profiling=profiling)
        result = asyncio.run(_run_until_interrupted(bench.run, progress))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        keep = not result.ok
        return result, out
    except KeyboardInterrupt:
        keep = False
        raise
    finally:
        if temporary and not keep:
            shutil.rmtree(directory, ignore_errors=True)
        elif temporary:
            progress.note(f"kept {directory} for its logs ({directory / 'logs'})")
