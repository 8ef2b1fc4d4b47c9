"""``ordersaga bench --profile DIR``: py-spy flame graphs of the API and the worker under load.

For each sampled process two py-spy recorders run side by side: one writes
the flame graph (``DIR/<name>.svg``), the other the collapsed stacks
(``DIR/<name>.txt``), since py-spy writes one format per run;
``DIR/summary.txt`` is computed from the stacks (``tooling.bench.stacks``).
Both sample at 100 Hz with ``--nonblocking``, so the sampled process is
never paused; py-spy's reads still take CPU and memory bandwidth beside it,
which is why a profiled run says its figures are not comparable.

py-spy writes its file when it gets SIGINT, or when the sampled process
exits; it attaches through ``process_vm_readv``, which the kernel may refuse
(``tooling.bench.ptrace_probe`` tells whether it did).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tooling.bench import ptrace_probe, stacks
from tooling.bench.processes import BenchError, inherited_env
from tooling.processes import Child, python_module, spawn

RATE = 100  # samples per second, per busy thread
# py-spy's --format and the extension of its file.
FORMATS = {"flamegraph": "svg", "raw": "txt"}
# py-spy reads the target's binary and symbols when it attaches; the
# measured phase starts after this, so that work is not in its figures, and
# a recorder that could not attach has usually exited by then (py-spy tries
# again for about 0.4 s before it gives up).
ATTACH_SECONDS = 1.0
# For py-spy to write its file after SIGINT (a flame graph of a long phase
# takes a moment).
WRITE_TIMEOUT = 60.0
SUMMARY = "summary.txt"
TOP_FRAMES = 30


class ProfilerNotPermitted(BenchError):
    """py-spy may not read the sampled process's memory (ptrace is not permitted)."""


def find_py_spy() -> Path:
    """The py-spy of the bench's own environment (a dev dependency), else one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file():
        return beside
    if found := shutil.which("py-spy"):
        return Path(found)
    raise BenchError(
        "py-spy is not installed: `make install` installs it (dev dependencies)", exit_code=2
    )


@dataclass(frozen=True)
class Profile:
    """What py-spy wrote for one process."""

    name: str
    flamegraph: Path
    stacks: Path


@dataclass(frozen=True)
class ProfileFiles:
    """Where a profiled run's files are, for its report and JSON."""

    during: str  # which phase was sampled
    summary: str
    flamegraphs: dict[str, str]  # process: path
    stacks: dict[str, str]  # process: path of its collapsed stacks


@dataclass(frozen=True)
class _Recorder:
    target: str
    pid: int
    child: Child
    output: Path
    log: Path

    @property
    def name(self) -> str:
        return f"py-spy {self.target} {self.child.name}"


class Recording:
    """py-spy recorders attached to running processes, until ``stop``."""

    def __init__(self, recorders: list[_Recorder]) -> None:
        self._recorders = recorders

    @property
    def pids(self) -> dict[str, int]:
        """Each recorder's pid by name: its CPU is the profiler's, not the stack's."""
        return {r.name: r.child.process.pid for r in self._recorders}

    async def stop(self) -> list[Profile]:
        """SIGINT every recorder and wait until each wrote its file; what they wrote.

        Raises BenchError when a recorder failed or wrote nothing.
        """
        try:
            for recorder in self._recorders:
                if not recorder.child.running:  # it gave up on its own: why?
                    raise await attach_error(recorder.name, recorder.pid, recorder.log)
            for recorder in self._recorders:
                recorder.child.signal(signal.SIGINT)
            for recorder in self._recorders:
                code = await _wait(recorder.child, WRITE_TIMEOUT)
                if code is None:
                    raise BenchError(
                        f"{recorder.name} did not write {recorder.output} within "
                        f"{WRITE_TIMEOUT:.0f} s of SIGINT; see {recorder.log}"
                    )
                if code != 0 or not _written(recorder.output):
                    raise BenchError(
                        f"{recorder.name} exited with code {code} without a profile; "
                        f"see {recorder.log}"
                    )
        finally:
            self.kill()
        written = {(r.target, r.child.name): r.output for r in self._recorders}
        return [
            Profile(target, written[target, "flamegraph"], written[target, "raw"])
            for target in dict.fromkeys(r.target for r in self._recorders)
        ]

    def kill(self) -> None:
        """End every recorder at once (an error, Ctrl-C): its file is not written."""
        for recorder in self._recorders:
            recorder.child.kill()


async def start_recording(
    py_spy: Path, targets: Mapping[str, int], directory: Path, log_dir: Path
) -> Recording:
    """Attach two recorders to each of ``targets`` (name: pid), writing into ``directory``.

    Raises ProfilerNotPermitted when the kernel does not let py-spy read a
    target, BenchError when a recorder failed otherwise.
    """
    directory.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    recorders: list[_Recorder] = []
    try:
        for target, pid in targets.items():
            for fmt, extension in FORMATS.items():
                output = directory / f"{target}.{extension}"
                output.unlink(missing_ok=True)  # a file left by an earlier run proves nothing
                log = log_dir / f"py-spy-{target}-{fmt}.log"
                argv = [str(py_spy), "record", "--nonblocking", "--rate", str(RATE)]
                argv += ["--pid", str(pid), "--format", fmt, "-o", str(output)]
                with log.open("ab") as out:
                    # Its own process group: a Ctrl-C in the terminal reaches
                    # the bench, which stops it; and it dies with the bench.
                    child = spawn(fmt, argv, inherited_env(), output=out, stop_timeout=5.0)
                recorders.append(_Recorder(target, pid, child, output, log))
        await asyncio.sleep(ATTACH_SECONDS)
        for recorder in recorders:
            if not recorder.child.running:
                raise await attach_error(recorder.name, recorder.pid, recorder.log)
    except BaseException:
        Recording(recorders).kill()
        raise
    return Recording(recorders)


async def attach_error(name: str, pid: int, log: Path) -> BenchError:
    """Why the recorder ``name`` of ``pid`` gave up before it was stopped.

    ProfilerNotPermitted (exit code 2: how the bench is run must change)
    when a process of ours may not read ``pid``'s memory; else a BenchError.
    """
    if await may_read_memory(pid) is False:
        return ProfilerNotPermitted(
            f"{name}: py-spy may not read the memory of pid {pid}: ptrace is not permitted "
            "here. Run the bench as root, give it CAP_SYS_PTRACE, or set "
            f"kernel.yama.ptrace_scope to 0; see {log}",
            exit_code=2,
        )
    return BenchError(f"{name} gave up before it was stopped; see {log}")


async def may_read_memory(pid: int) -> bool | None:
    """Whether a child of ours may read ``pid``'s memory, as py-spy must; None: cannot tell."""
    process = await asyncio.to_thread(
        subprocess.run,
        python_module("tooling.bench.ptrace_probe", str(pid)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    return {ptrace_probe.PERMITTED: True, ptrace_probe.NOT_PERMITTED: False}.get(process.returncode)


def write_summary(profiles: list[Profile], path: Path, *, during: str) -> None:
    """``summary.txt``: each process's samples and its top frames, from its collapsed stacks."""
    try:
        summaries = {
            p.name: stacks.summarize(p.stacks.read_text(), top=TOP_FRAMES) for p in profiles
        }
    except ValueError as err:
        raise BenchError(f"py-spy's collapsed stacks could not be read: {err}") from None
    heading = f"py-spy --nonblocking, {RATE} samples per second per busy thread, {during}."
    path.write_text(stacks.render_summary(summaries, heading=heading))


def _written(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


async def _wait(child: Child, timeout: float) -> int | None:
    """``child``'s exit code once it exited, or None after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while child.running:
        if loop.time() > deadline:
            return None
        await asyncio.sleep(0.05)
    return child.process.returncode
