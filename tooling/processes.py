"""Starting and stopping local processes: for the dev stack, the bench and the fault tests.

The three share these rules, kept here once:

- ports: a free one is picked *below* the ephemeral range, and a port given
  on the command line is checked before anything starts;
- a child leads its own process group (a Ctrl-C in the terminal reaches only
  the supervisor) and, on Linux, is SIGTERMed if the supervisor dies;
- Python children run as ``python -P -m module`` unless a caller needs the
  working directory on ``sys.path`` (an older source tree);
- waiting until a child answers is a bounded poll that fails early if a child
  exits;
- stopping is SIGTERM to the group, then SIGKILL after a bound, last-started
  child first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import httpx

log = logging.getLogger("ordersaga.processes")

T = TypeVar("T")


class ProcessError(Exception):
    """A one-line reason a process cannot run. Exit code 2 means: fix the invocation."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- ports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    number: int
    what: str  # "API"
    flag: str  # "--api-port"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers bind: a port whose old connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            raise ProcessError(f"cannot use port {port}: {err.strerror}", exit_code=2) from None
    return False


def check_ports(ports: Sequence[Port], host: str = "127.0.0.1") -> None:
    """Refuse, in one line, before anything starts: a port taken or given twice."""
    seen: dict[int, Port] = {}
    for port in ports:
        if port.number in seen:
            other = seen[port.number]
            raise ProcessError(
                f"port {port.number} is given to both the {other.what} and the {port.what}; "
                f"pass {port.flag}",
                exit_code=2,
            )
        seen[port.number] = port
        if port_in_use(port.number, host):
            raise ProcessError(
                f"port {port.number} ({port.what}) is already in use; pass {port.flag}",
                exit_code=2,
            )


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port *below* the ephemeral range.

    A port the kernel hands out for ``bind(0)`` is in the ephemeral range, so
    any outgoing connection on the machine (ours, or another program's) may
    take it before the server it was meant for binds it; one below the range
    is only ever taken by a listener.
    """
    low, _ = _ephemeral_ports()
    choices = random.Random()
    for _ in range(200):
        port = choices.randint(max(1024, low - 12000), low - 1)
        if _bindable(port):
            return port
    with socket.socket() as sock:  # a crowded machine: take what the kernel gives
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


# --- spawning --------------------------------------------------------------------


def python_module(module: str, *args: str, safe_path: bool = True) -> list[str]:
    """``python -m module args`` with this interpreter (works with or without the script).

    -P (``safe_path``): the working directory is not put on sys.path, so a
    stray ``core`` package in it (say, /tmp) cannot stand in for ordersaga's own.
    """
    return [sys.executable, *(["-P"] if safe_path else []), "-m", module, *args]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook that has the child SIGTERMed when this supervisor dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    # Resolved here, in the parent: the hook runs between fork and exec, where
    # loading a library is not safe.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        # The child leads its own process group; signal the group so anything
        # it started goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def stop(self, hurry: asyncio.Event) -> int:
        """SIGTERM, then SIGKILL after ``stop_timeout`` (or at once when ``hurry`` is set)."""
        if self.running:
            self.signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_timeout
            while self.running and loop.time() < deadline and not hurry.is_set():
                await asyncio.sleep(0.1)
            if self.running:
                log.warning("%s did not stop in time; killing it", self.name)
                self.signal(signal.SIGKILL)
        return self.process.wait()

    def stop_blocking(self) -> None:
        """``stop`` for synchronous callers: SIGTERM, SIGKILL after ``stop_timeout``."""
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the group at once: no graceful shutdown."""
        if self.running:
            self.signal(signal.SIGKILL)
            self.process.wait()


def spawn(
    name: str,
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stop_timeout: float,
    output: IO[bytes] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start ``argv`` in its own process group; its output into ``output`` (None: ours)."""
    process = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # fork-safe: it only calls a pre-resolved prctl
    )
    return Child(name, process, stop_timeout)


async def stop_in_order(children: list[Child], hurry: asyncio.Event) -> list[tuple[Child, int]]:
    """Stop and remove every child, last-started first; each child's exit code."""
    codes = []
    while children:
        child = children.pop()
        codes.append((child, await child.stop(hurry)))
    return codes


# --- waiting ---------------------------------------------------------------------


class NotReady(Exception):
    """A bounded wait ran out; the last probe error, if any, is the cause."""


async def wait_until(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.25,
    check: Callable[[], None] | None = None,
) -> T:
    """Poll ``probe`` until it returns a value; ``check`` first on each round (it raises
    when waiting is pointless, say a child exited). NotReady once ``timeout`` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if check is not None:
            check()
        result = await probe()
        if result is not None:
            return result
        if loop.time() > deadline:
            raise NotReady
        await asyncio.sleep(interval)


def http_ok(http: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[bool | None]]:
    """A probe: ``url`` answers 200."""

    async def probe() -> bool | None:
        with contextlib.suppress(httpx.HTTPError):  # not listening yet
            if (await http.get(url)).status_code == 200:
                return True
        return None

    return probe


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], Awaitable[bool | None]]:
    """A probe: something accepts connections on ``host:port``."""

    async def probe() -> bool | None:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return None
        writer.close()
        await writer.wait_closed()
        return True

    return probe


def answers(connect: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T | None]]:
    """A probe: ``connect()`` succeeds (a server not answering yet raises anything)."""

    async def probe() -> T | None:
        try:
            return await connect()
        except Exception:  # not answering yet
            return None

    return probe
