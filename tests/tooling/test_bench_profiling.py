"""``ordersaga bench --profile``: py-spy really attached to a process, and its failures.

The recording test runs the project's py-spy against a busy Python child for
about a second. Where the kernel does not let py-spy read another process's
memory (ptrace not permitted), it is skipped, and only then.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from core.settings import Settings
from tooling.bench import profiling, ptrace_probe, stacks
from tooling.bench.processes import BenchError
from tooling.bench.profiling import (
    ProfilerNotPermitted,
    attach_error,
    find_py_spy,
    may_read_memory,
    start_recording,
    write_summary,
)
from tooling.bench.run import QUICK, run_bench

# Spins in a function of its own, so its frame is in every sample; says when
# the interpreter is up, so py-spy attaches to a running Python.
BUSY = (
    "def spin():\n    while True:\n        sum(range(1000))\nprint('ready', flush=True)\nspin()\n"
)


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process with no Python in it: py-spy finds nothing to sample."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


async def test_py_spy_writes_a_flame_graph_and_the_stacks_of_a_busy_process(
    busy: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    directory = tmp_path / "profile"
    try:
        recording = await start_recording(
            find_py_spy(), {"busy": busy.pid}, directory, tmp_path / "logs"
        )
    except ProfilerNotPermitted as err:
        pytest.skip(f"ptrace is not permitted on this machine: {err}")
    await asyncio.sleep(1.0)
    (profile,) = await recording.stop()
    assert (profile.name, profile.flamegraph, profile.stacks) == (
        "busy",
        directory / "busy.svg",
        directory / "busy.txt",
    )
    svg = ElementTree.parse(profile.flamegraph).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [el.text or "" for el in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(title.startswith("spin (<string>") for title in titles)
    summary = stacks.summarize(profile.stacks.read_text())
    assert summary.samples > 0
    spin = next(share for share in summary.frames if share.frame.function == "spin")
    assert spin.inclusive > 0
    # Nothing of the recorders is left running.
    assert recording.pids and all(not _alive(pid) for pid in recording.pids.values())

    write_summary([profile], directory / "summary.txt", during="during a test")
    assert "busy: " in (directory / "summary.txt").read_text()


async def test_a_process_without_python_fails_the_recording_with_a_bench_error(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    with pytest.raises(BenchError) as failed:
        # py-spy gives up while attaching or soon after: either step says so.
        recording = await start_recording(
            find_py_spy(), {"sleep": sleeper.pid}, tmp_path / "profile", tmp_path / "logs"
        )
        await recording.stop()
    if isinstance(failed.value, ProfilerNotPermitted):
        pytest.skip("ptrace is not permitted on this machine")
    assert failed.value.exit_code == 1
    assert not (tmp_path / "profile" / "sleep.svg").exists()


@pytest.mark.parametrize(
    ("readable", "error", "exit_code"),
    [(False, ProfilerNotPermitted, 2), (True, BenchError, 1), (None, BenchError, 1)],
)
async def test_a_recorder_that_gave_up_is_blamed_on_ptrace_only_when_the_probe_says_so(
    readable: bool | None,
    error: type[BenchError],
    exit_code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def probe(pid: int) -> bool | None:
        return readable

    monkeypatch.setattr(profiling, "may_read_memory", probe)
    found = await attach_error("py-spy api raw", 12345, tmp_path / "py-spy.log")
    assert type(found) is error
    assert found.exit_code == exit_code


async def test_the_probe_tells_whether_a_live_process_may_be_read(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert isinstance(await may_read_memory(sleeper.pid), bool)


def test_the_probe_cannot_tell_for_a_process_that_is_gone_or_a_bad_argument() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert ptrace_probe.can_read_memory(gone.pid) is None
    assert ptrace_probe.main([str(gone.pid)]) == ptrace_probe.UNKNOWN
    assert ptrace_probe.main(["not-a-pid"]) == ptrace_probe.UNKNOWN


def test_a_missing_py_spy_is_an_invocation_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError) as missing:
        find_py_spy()
    assert missing.value.exit_code == 2
    # run_bench refuses before it starts anything: no data directory made.
    data_dir = tmp_path / "run"
    with pytest.raises(BenchError) as refused:
        run_bench(QUICK, Settings(), data_dir=data_dir, out=None, profile_dir=tmp_path / "p")
    assert refused.value.exit_code == 2
    assert not data_dir.exists()


def test_a_profile_directory_that_cannot_be_made_is_an_invocation_error(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    data_dir = tmp_path / "run"
    with pytest.raises(BenchError) as refused:
        run_bench(QUICK, Settings(), data_dir=data_dir, out=None, profile_dir=taken)
    assert refused.value.exit_code == 2
    assert not data_dir.exists()


def test_the_project_s_own_py_spy_is_found() -> None:
    found = find_py_spy()
    assert found.is_file()
    assert subprocess.run([found, "--version"], capture_output=True).returncode == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (reaped later by its Popen) no longer runs.
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
