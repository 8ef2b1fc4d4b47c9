"""``ordersaga dev``: the whole stack as one process tree, no Docker.

This process is the supervisor. It owns, in start order: the embedded
PostgreSQL (unless ``DATABASE_URL`` is set), the Temporal dev server (unless
``TEMPORAL_ADDRESS`` is set), the SMTP sink (in this process), then the worker
and the API as child processes. It stops them in reverse order on Ctrl-C or
SIGTERM, so the API stops taking checkouts before the worker goes, and the
worker finishes its tasks before Temporal and PostgreSQL go away.

Children run in their own process groups: a Ctrl-C in the terminal reaches
only this supervisor, which then stops them one by one. On Linux they also
get SIGTERM if the supervisor dies, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.db import SessionFactory, create_engine, create_session_factory
from core.settings import Settings
from core.stack_file import StackInfo, remove_stack_file, write_stack_file
from tooling.devstack_banner import print_banner
from tooling.devstack_config import (
    LOCK_FILE,
    STARTUP_TIMEOUT,
    DevOptions,
    StackError,
    child_env,
    dev_ports,
    first_line,
    ordersaga_argv,
)
from tooling.devstack_seed import seed_first_start
from tooling.devstack_temporal import start_temporal
from tooling.postgres import start_embedded_postgres
from tooling.processes import (
    Child,
    NotReady,
    check_ports,
    http_ok,
    spawn,
    stop_in_order,
    wait_until,
)

log = logging.getLogger("ordersaga.dev")

# `make dev` runs us under `uv run`, which forwards the terminal's SIGINT that
# we also get directly: signals this close together are one Ctrl-C.
DUPLICATE_SIGNAL_WINDOW = 1.0


# --- the supervisor -------------------------------------------------------------


@dataclass
class DevStack:
    settings: Settings
    options: DevOptions
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)
    database_url: str = ""
    temporal_address: str = ""
    children: list[Child] = field(default_factory=list)
    _undo: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    _stack_file_written: bool = False
    _first_signal_at: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.options.data_dir

    # -- lifecycle --

    def request_stop(self) -> None:
        now = time.monotonic()
        if not self.stop_requested.is_set():
            print("\nordersaga: stopping the stack (Ctrl-C again to kill it)", flush=True)
            self._first_signal_at = now
            self.stop_requested.set()
        elif now - self._first_signal_at > DUPLICATE_SIGNAL_WINDOW:
            print("ordersaga: stopping now", file=sys.stderr, flush=True)
            self.hurry.set()
        # else: one Ctrl-C delivered twice (the terminal's, and `uv run` forwarding it).

    def _check_stop(self) -> None:
        if self.stop_requested.is_set():
            raise _Stopped

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._start()
            return await self._supervise()
        except _Stopped:
            return 0
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        check_ports(dev_ports(self.settings, self.options))
        self._lock_data_dir()
        await self._start_postgres()
        self._check_stop()
        try:
            await asyncio.to_thread(_migrate, self.database_url)
        except Exception as err:  # the driver's and Alembic's errors, told in one line
            raise StackError(f"cannot migrate the database: {first_line(err)}") from err
        self._check_stop()
        await self._start_temporal()
        self._check_stop()
        sessions = self._open_database()
        await self._start_smtp_sink(sessions)
        await self._seed_first_start(sessions)
        self._check_stop()
        if self.options.run_worker:
            # Its own graceful shutdown lets activities in flight finish first.
            grace = self.settings.worker_graceful_shutdown_seconds + 15.0
            self._start_child("worker", ordersaga_argv("worker"), stop_timeout=grace)
        self._start_child(
            "api",
            ordersaga_argv(
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.options.api_port),
                "--metrics-port",
                str(self.options.api_metrics_port),
            ),
            stop_timeout=15.0,
        )
        await self._wait_for_api()
        write_stack_file(self.data_dir, self._stack_info())
        self._stack_file_written = True
        self._print_banner()

    async def _supervise(self) -> int:
        """Wait for a stop request, or for a child to die (then stop the rest)."""
        while not self.stop_requested.is_set():
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    print(
                        f"ordersaga: the {child.name} exited with code {code}; stopping the stack",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), timeout=0.5)
        return 0

    async def _shutdown(self) -> None:
        # First, so no new process joins a stack that is going away.
        if self._stack_file_written:
            remove_stack_file(self.data_dir)
        # Children last-started first: the API, then the worker, then Temporal.
        for child, code in await stop_in_order(self.children, self.hurry):
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                log.warning("%s exited with code %s", child.name, code)
        for what, undo in reversed(self._undo):
            try:
                result = undo()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # keep stopping the rest; say what failed
                log.exception("could not stop the %s cleanly", what)

    # -- steps --

    def _lock_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = (self.data_dir / LOCK_FILE).open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackError(
                f"another `ordersaga dev` is already running on {self.data_dir}; "
                "stop it or pass another --data-dir",
                exit_code=2,
            ) from None
        self._undo.append(("data directory lock", handle.close))

    async def _start_postgres(self) -> None:
        if self.settings.database_url:
            self.database_url = self.settings.database_url
            return
        pgdata = self.data_dir / "postgres"
        print(f"ordersaga: starting PostgreSQL in {pgdata}", flush=True)
        try:
            server = await asyncio.to_thread(start_embedded_postgres, pgdata)
        except Exception as err:
            raise StackError(
                f"PostgreSQL did not start ({type(err).__name__}); see {pgdata / 'log'}"
            ) from err
        self._undo.append(("PostgreSQL", lambda: asyncio.to_thread(server.cleanup)))
        self.database_url = str(server.get_uri())

    async def _start_temporal(self) -> None:
        self.temporal_address = await start_temporal(
            self.settings, self.options, started=self.children.append, check=self._check_stop
        )

    def _open_database(self) -> SessionFactory:
        engine = create_engine(self.database_url, pool_size=2)
        self._undo.append(("database engine", engine.dispose))
        return create_session_factory(engine)

    async def _start_smtp_sink(self, sessions: SessionFactory) -> None:
        from tooling.smtp_sink import start_smtp_sink

        server = await start_smtp_sink(sessions, "127.0.0.1", self.options.smtp_port)

        async def close() -> None:
            server.close()
            await server.wait_closed()

        self._undo.append(("SMTP sink", close))

    async def _seed_first_start(self, sessions: SessionFactory) -> None:
        await seed_first_start(self.settings, sessions)

    def _start_child(self, name: str, argv: list[str], *, stop_timeout: float) -> None:
        self.children.append(
            spawn(
                name,
                argv,
                child_env(
                    self.options,
                    self.database_url,
                    self.temporal_address,
                    # An external Temporal's UI is not ours to know: the
                    # setting (if any) passes through unchanged.
                    temporal_ui_url=None
                    if self.settings.temporal_address
                    else f"http://127.0.0.1:{self.options.ui_port}",
                ),
                stop_timeout=stop_timeout,
            )
        )

    async def _wait_for_api(self) -> None:
        url = f"http://127.0.0.1:{self.options.api_port}/readyz"

        def check() -> None:
            self._check_stop()
            for child in self.children:
                if not child.running:
                    raise StackError(
                        f"the {child.name} exited with code {child.process.returncode} "
                        "while starting; see its output above"
                    )

        async with httpx.AsyncClient(timeout=2.0) as http:
            try:
                await wait_until(http_ok(http, url), timeout=STARTUP_TIMEOUT, check=check)
            except NotReady:
                raise StackError(f"the API did not become ready at {url}") from None

    def _stack_info(self) -> StackInfo:
        o = self.options
        return StackInfo(
            pid=os.getpid(),
            database_url=self.database_url,
            temporal_address=self.temporal_address,
            temporal_ui_url=self._ui_url(),
            api_url=f"http://127.0.0.1:{o.api_port}",
            smtp_port=o.smtp_port,
        )

    def _ui_url(self) -> str:
        if self.settings.temporal_address:
            return "(external Temporal: see its own Web UI)"
        return f"http://127.0.0.1:{self.options.ui_port}"

    def _print_banner(self) -> None:
        print_banner(self.settings, self.options, self.temporal_address, self._ui_url())


class _Stopped(Exception):
    """A stop was requested while the stack was still starting."""


def _migrate(database_url: str) -> None:
    from core.migrate import upgrade

    upgrade(database_url)


def run_dev(settings: Settings, options: DevOptions) -> int:
    """Run the stack until Ctrl-C/SIGTERM; return the process exit code."""
    options = DevOptions(**{**options.__dict__, "data_dir": options.data_dir.resolve()})
    return asyncio.run(DevStack(settings, options).run())
