"""CPU time and peak memory of the stack's processes, each measured as a tree.

A process is measured with everything it started: PostgreSQL is the
postmaster and all of its backends, which come and go with connections. A
tree's CPU time is the user + system time of its live members plus what they
collected from children that already exited (``children_user`` /
``children_system``), so a backend that ends mid-phase still counts.

Memory is sampled every ``interval`` seconds on a thread (psutil's calls
block; the load generator's event loop must not). A tree's resident size is
the unshared part of each member plus the largest shared part once:
PostgreSQL's backends all map the same shared buffers, and adding them up
per backend would count that memory once per connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024


class ProcessTree:
    """A named process and (with ``recursive``) every process below it."""

    def __init__(self, name: str, pid: int, *, recursive: bool = True) -> None:
        self.name = name
        self.pid = pid
        self.recursive = recursive
        self._root = psutil.Process(pid)

    def members(self) -> Iterator[psutil.Process]:
        try:
            yield self._root
            if self.recursive:
                yield from self._root.children(recursive=True)
        except psutil.Error:  # the root is gone: nothing more to count
            return

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.members():
            try:
                times = process.cpu_times()
            except psutil.Error:  # exited between listing and reading
                continue
            total += times.user + times.system
            if self.recursive:
                total += times.children_user + times.children_system
        return total

    def rss_bytes(self) -> int:
        unshared = 0
        shared = 0
        for process in self.members():
            try:
                memory = process.memory_info()
            except psutil.Error:
                continue
            # `shared` is Linux's resident shared pages; elsewhere count all of it.
            part = getattr(memory, "shared", 0)
            unshared += memory.rss - part
            shared = max(shared, part)
        return unshared + shared


@dataclass(frozen=True)
class Usage:
    """What one process tree used during a phase."""

    cpu_seconds: float
    peak_rss_mib: float


@dataclass(frozen=True)
class Mark:
    """CPU times at the start of a phase: per tree, and of the whole machine."""

    cpu: dict[str, float] = field(default_factory=dict)
    machine_cpu: float = 0.0


@dataclass(frozen=True)
class PhaseUsage:
    processes: dict[str, Usage]
    # CPU seconds the machine spent outside every measured tree during the
    # phase: another program running beside the bench disturbs its figures.
    other_cpu_seconds: float


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot."""
    times = psutil.cpu_times()
    busy = times.user + times.system
    for extra in ("nice", "irq", "softirq"):  # Linux's other kinds of busy time
        busy += getattr(times, extra, 0.0)
    return float(busy)


class Sampler:
    """Samples the registered trees' memory in the background; measures phases."""

    def __init__(self, interval: float = 0.15) -> None:
        self._interval = interval
        self._trees: dict[str, ProcessTree] = {}
        self._peaks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def add(self, tree: ProcessTree) -> None:
        with self._lock:
            self._trees[tree.name] = tree
            self._peaks[tree.name] = tree.rss_bytes()

    def remove(self, name: str) -> None:
        with self._lock:
            self._trees.pop(name, None)
            self._peaks.pop(name, None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def begin(self) -> Mark:
        """Start a phase: peaks start again from now."""
        with self._lock:
            trees = list(self._trees.values())
            for tree in trees:
                self._peaks[tree.name] = tree.rss_bytes()
        return Mark({tree.name: tree.cpu_seconds() for tree in trees}, machine_cpu_seconds())

    def end(self, mark: Mark) -> PhaseUsage:
        """CPU seconds since ``mark`` and the peak memory of each tree measured since."""
        self._sample()
        with self._lock:
            trees = [t for t in self._trees.values() if t.name in mark.cpu]
            peaks = dict(self._peaks)
        machine = machine_cpu_seconds() - mark.machine_cpu
        processes = {
            tree.name: Usage(
                cpu_seconds=max(0.0, tree.cpu_seconds() - mark.cpu[tree.name]),
                peak_rss_mib=peaks.get(tree.name, 0) / MIB,
            )
            for tree in trees
        }
        ours = sum(use.cpu_seconds for use in processes.values())
        return PhaseUsage(processes, max(0.0, machine - ours))

    def _sample(self) -> None:
        with self._lock:
            trees = list(self._trees.values())
        sizes = {tree.name: tree.rss_bytes() for tree in trees}
        with self._lock:
            for name, size in sizes.items():
                if name in self._peaks:
                    self._peaks[name] = max(self._peaks[name], size)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()
