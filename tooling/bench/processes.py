"""Starting and stopping the bench's processes: PostgreSQL, Temporal, SMTP sink, worker, API.

Each one is a real OS process, started the way ``ordersaga dev`` starts its
own (``tooling.processes``: ``spawn`` puts it in its own process group and has it
killed if the bench dies), with its output in ``<data dir>/logs/``. A process
that exits while the bench waits for it to come up is reported with its log.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from core.migrate import upgrade
from tooling.bench import statements
from tooling.postgres import start_embedded_postgres
from tooling.processes import (
    Child,
    NotReady,
    ProcessError,
    answers,
    free_port,
    http_ok,
    spawn,
    stop_in_order,
    tcp_open,
    wait_until,
)
from tooling.temporal_dev import dev_server_argv

STARTUP_TIMEOUT = 120.0  # seconds; a busy two-core machine starts Temporal slowly
STOP_TIMEOUT = 20.0

# Inherited settings that would point a process at another database, Temporal
# or collector; the bench sets its own. Every other ORDERSAGA_ setting (pool
# sizes, worker slots, log level...) is passed on, so it can be benchmarked.
_NOT_INHERITED = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTLP_ENDPOINT",
    "MODE",
    "DATA_DIR",
    "JWT_PRIVATE_KEYS",
    "JWT_PUBLIC_KEYS",
    "JWKS_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "CHECKOUT_RATE_LIMIT",
)


class BenchError(ProcessError):
    """The bench cannot go on; the message says why (and which log to read).

    Exit code 2 means: fix the invocation.
    """


@dataclass
class Postgres:
    """The embedded PostgreSQL server holding every database of the run."""

    server: Any  # embedded_postgres' server handle (untyped library)

    @property
    def pid(self) -> int:
        pid: int = self.server.get_pid()
        return pid

    def url(self, database: str = "postgres", *, role: str = "postgres") -> str:
        """Over the unix socket, where every role is trusted: no password."""
        info = self.server.get_postmaster_info()
        return str(info.get_uri(user=role, database=database))

    def stop(self) -> None:
        self.server.cleanup()


async def start_postgres(pgdata: Path) -> Postgres:
    """The server, counting statements by role (``tooling.bench.statements``)."""
    try:
        server = await asyncio.to_thread(_start_counting_statements, pgdata)
    except BenchError:
        raise
    except Exception as err:  # the library raises many kinds; say where to look
        raise BenchError(f"PostgreSQL did not start; see {pgdata / 'log'}") from err
    return Postgres(server)


def _start_counting_statements(pgdata: Path) -> Any:
    server = start_embedded_postgres(pgdata)
    # embedded-postgres takes no server settings, and a preloaded library is
    # read only when the server starts: set it, then stop the server and
    # start it again. The bench's data directory is new, so this process
    # holds the only handle and cleanup() does stop it.
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        # Its default, set anyway: without it BEGIN and COMMIT are not counted.
        conn.execute("ALTER SYSTEM SET pg_stat_statements.track_utility = on")
    server.cleanup()
    server = start_embedded_postgres(pgdata)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        loaded = conn.execute("SHOW shared_preload_libraries").fetchone()
        if loaded is None or "pg_stat_statements" not in str(loaded[0]):
            raise BenchError(
                f"PostgreSQL in {pgdata} did not restart with pg_stat_statements "
                "(another process holds it?); give the bench a new --data-dir"
            )
        for role in statements.ROLES:
            # Superusers, as `postgres` was for every process before: the
            # product's processes keep every right they had, and only the
            # name differs, which is what tells their statements apart.
            conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    return server


async def create_database(postgres: Postgres, name: str) -> str:
    """A new, migrated database on ``postgres`` that counts statements; its URL."""

    def create() -> None:
        # CREATE DATABASE cannot run inside a transaction: autocommit.
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def count_statements() -> None:
        # The counters are read through the extension's view, from the stack's database.
        with psycopg.connect(postgres.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    if name != "postgres":
        await asyncio.to_thread(create)
    url = postgres.url(name)
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(count_statements)
    return url


@dataclass
class Processes:
    """The children started so far, stopped last-started first."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as log:
            child = spawn(name, argv, env, output=log, stop_timeout=STOP_TIMEOUT)
        self.children.append(child)
        return child

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def check(self) -> None:
        """Raise if a child has exited: the bench cannot measure a broken stack."""
        for child in self.children:
            if not child.running:
                raise BenchError(
                    f"the {child.name} exited with code {child.process.returncode}; "
                    f"see {self.log_path(child.name)}"
                )

    def forget(self, child: Child) -> None:
        """Drop a child that exited on its own (it is being replaced)."""
        self.children.remove(child)

    async def stop_all(self) -> None:
        # hurry never set: each child gets its full stop timeout.
        await stop_in_order(self.children, asyncio.Event())


def inherited_env() -> dict[str, str]:
    """This process's environment without what would point a child elsewhere."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in _NOT_INHERITED and key.removeprefix("ORDERSAGA_") not in _NOT_INHERITED
    }


def child_env(
    *,
    data_dir: Path,
    database_url: str,
    temporal_address: str,
    smtp_port: int,
    signing_key_pem: str,
) -> dict[str, str]:
    """The environment of a stack process: this stack's servers and keys, nothing inherited."""
    env = inherited_env()
    env.update(
        ORDERSAGA_MODE="dev",
        ORDERSAGA_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        TEMPORAL_ADDRESS=temporal_address,
        ORDERSAGA_SMTP_HOST="127.0.0.1",
        ORDERSAGA_SMTP_PORT=str(smtp_port),
        # Every process signs and verifies with the same key, as one deployment would.
        ORDERSAGA_JWT_PRIVATE_KEYS=json.dumps([signing_key_pem]),
        # The load comes from a handful of users; the per-user checkout limit
        # (30 per minute) would turn the bench into a test of the limiter.
        ORDERSAGA_CHECKOUT_RATE_LIMIT="0",
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_for_temporal(processes: Processes, address: str) -> Client:
    try:
        return await wait_until(
            answers(lambda: Client.connect(address)),
            timeout=STARTUP_TIMEOUT,
            check=processes.check,
        )
    except NotReady:
        raise BenchError(f"Temporal at {address} did not answer in time") from None


# A port chosen free can still be taken before the server binds it (and the
# dev server picks some of its own ports at random): try again on another.
BIND_ATTEMPTS = 3


async def start_temporal(processes: Processes, *, db_file: Path, tuned: bool) -> tuple[Client, str]:
    """The dev server on a free port, and a client of it; its address."""
    for attempt in range(1, BIND_ATTEMPTS + 1):
        port = free_port()
        # Untuned is the dev server's defaults: ceiling (d) runs on it. Both keep
        # their history in a SQLite file, as `ordersaga dev` does.
        argv = dev_server_argv(port=port, db_file=db_file, tuned=tuned)
        child = processes.start("temporal", argv, inherited_env())
        address = f"127.0.0.1:{port}"
        try:
            return await wait_for_temporal(processes, address), address
        except BenchError:
            log = processes.log_path("temporal").read_text(errors="replace")
            if attempt == BIND_ATTEMPTS or child.running or "address already in use" not in log:
                raise
            processes.forget(child)
    raise AssertionError("unreachable")  # the last attempt returns or raises


async def wait_for_pollers(
    processes: Processes, client: Client, task_queue: str, *, activities: bool = True
) -> None:
    """Until a worker polls ``task_queue`` (for workflow tasks, and activity tasks)."""
    kinds = [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
    if activities:
        kinds.append(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    for kind in kinds:
        request = DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
        )

        async def polled(request: DescribeTaskQueueRequest = request) -> bool | None:
            return (
                bool((await client.workflow_service.describe_task_queue(request)).pollers) or None
            )

        try:
            # One deadline for both kinds, as before.
            await wait_until(
                polled, timeout=max(0.0, deadline - loop.time()), check=processes.check
            )
        except NotReady:
            raise BenchError(f"no worker polls task queue {task_queue!r}") from None


async def wait_for_port(processes: Processes, port: int) -> None:
    """Until something accepts connections on 127.0.0.1:``port``."""
    try:
        await wait_until(
            tcp_open(port), timeout=STARTUP_TIMEOUT, interval=0.1, check=processes.check
        )
    except NotReady:
        raise BenchError(f"nothing listens on port {port}") from None


async def wait_for_api(processes: Processes, url: str) -> None:
    async with httpx.AsyncClient(timeout=2.0) as http:
        try:
            await wait_until(
                http_ok(http, f"{url}/readyz"), timeout=STARTUP_TIMEOUT, check=processes.check
            )
        except NotReady:
            raise BenchError(f"the API at {url} did not become ready") from None
