"""tooling/processes.py: the one module that starts, waits for and stops local processes."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import pytest

from tooling.processes import (
    Child,
    NotReady,
    Port,
    ProcessError,
    check_ports,
    free_port,
    python_module,
    spawn,
    stop_in_order,
    tcp_open,
    wait_until,
)

# A child that ignores SIGTERM, so only SIGKILL ends it; it says when it is ready.
_STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)


def _low_end_of_ephemeral_range() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError):
        return 32768


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    port = free_port()
    assert port < _low_end_of_ephemeral_range()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_a_port_in_use_or_given_twice_is_refused_with_exit_code_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(ProcessError) as in_use:
            check_ports([Port(busy, "API", "--api-port")])
    assert in_use.value.exit_code == 2
    port = free_port()
    with pytest.raises(ProcessError) as twice:
        check_ports([Port(port, "API", "--api-port"), Port(port, "SMTP sink", "--smtp-port")])
    assert twice.value.exit_code == 2


def test_python_children_skip_the_working_directory_unless_asked() -> None:
    assert python_module("tooling.cli", "api")[1:] == ["-P", "-m", "tooling.cli", "api"]
    assert "-P" not in python_module("tooling.cli", "worker", safe_path=False)


async def test_a_wait_is_bounded() -> None:
    async def never() -> None:
        return None

    with pytest.raises(NotReady):
        await wait_until(never, timeout=0.2, interval=0.05)


async def test_a_wait_ends_early_when_the_check_raises() -> None:
    rounds = 0

    async def never() -> None:
        return None

    def check() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            raise ProcessError("the child exited")

    with pytest.raises(ProcessError):
        await wait_until(never, timeout=600, interval=0.01, check=check)
    assert rounds == 3


async def test_tcp_probe_sees_a_listener() -> None:
    assert await tcp_open(free_port())() is None
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await wait_until(tcp_open(port), timeout=30, interval=0.05) is True


async def _started(tmp_path: Path, name: str, stop_timeout: float) -> Child:
    log = tmp_path / f"{name}.log"
    with log.open("ab") as out:
        child = spawn(
            name, [sys.executable, "-c", _STUBBORN], {}, stop_timeout=stop_timeout, output=out
        )

    async def ready() -> bool | None:
        return True if "ready" in log.read_text() else None

    await wait_until(ready, timeout=60, interval=0.05)
    return child


async def test_a_child_that_ignores_sigterm_is_killed_after_its_bound(tmp_path: Path) -> None:
    child = await _started(tmp_path, "stubborn", stop_timeout=0.3)
    assert await child.stop(asyncio.Event()) == -signal.SIGKILL
    assert not child.running


async def test_hurry_kills_without_waiting_out_the_bound(tmp_path: Path) -> None:
    child = await _started(tmp_path, "stubborn", stop_timeout=600)
    hurry = asyncio.Event()
    hurry.set()
    assert await child.stop(hurry) == -signal.SIGKILL


async def test_children_stop_last_started_first(tmp_path: Path) -> None:
    first = await _started(tmp_path, "first", stop_timeout=0.1)
    second = await _started(tmp_path, "second", stop_timeout=0.1)
    children = [first, second]
    stopped = await stop_in_order(children, asyncio.Event())
    assert [child.name for child, _ in stopped] == ["second", "first"]
    assert children == []


async def test_blocking_stop_and_kill_end_the_group(tmp_path: Path) -> None:
    child = await _started(tmp_path, "stubborn", stop_timeout=0.3)
    child.stop_blocking()
    assert child.process.returncode == -signal.SIGKILL
    other = await _started(tmp_path, "other", stop_timeout=600)
    other.kill()
    assert other.process.returncode == -signal.SIGKILL
