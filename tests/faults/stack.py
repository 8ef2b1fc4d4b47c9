"""The whole ordersaga stack for fault scenarios, as real, breakable parts.

``fault_stack()`` owns one PostgreSQL and one Temporal dev server (both its
own, so stopping them disturbs no other test) and an SMTP sink. Each
``scenario()`` gets clean tables, its own task queue, the API in-process and
any number of worker *processes*; whatever it started is killed when it ends,
even when the scenario failed.

Used by ``tests/faults/test_*.py`` (pytest) and ``tests/faults/fault_matrix.py`` (the
documented full run), so both run exactly the same code.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from activities.messages import NotificationKind
from api.keys import generate_private_key_pem
from core.db import SessionFactory, create_engine, create_session_factory
from core.migrate import upgrade
from core.models import (
    Base,
    Notification,
    NotificationStatus,
    Order,
    OrderStatus,
    Product,
    Role,
    SimulatorCharge,
    User,
)
from core.settings import Settings
from tests.faults.processes import Postgres, TemporalServer, WorkerProcess
from tests.support.e2e import api_client, checkout, free_port, order_body
from tests.support.factories import auth_header, create_product, create_user
from tooling.audit import KEEPS_MONEY, AuditReport, run_audit
from tooling.smtp_sink import start_smtp_sink

# Each provider call may take PROVIDER_TIMEOUT (short, so a charge lost with
# a killed worker is retried soon) and the whole charge PAYMENT_DEADLINE: long
# enough for a crashed worker to be replaced, since without the crash the
# order would have been charged. Payment scenarios use SHORT_PAYMENT_DEADLINE
# so a tok_timeout order settles in seconds.
PROVIDER_TIMEOUT = 2.0
PAYMENT_DEADLINE = 60.0
SHORT_PAYMENT_DEADLINE = 8.0
# Bound on how long a scenario waits for its orders (a kill costs the
# activity's start-to-close timeout plus the sticky-queue timeout).
SETTLE_TIMEOUT = 180.0

_TABLES = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)


@dataclass
class Counters:
    """What a run did, for the figures in docs/RELIABILITY.md."""

    cases: int = 0
    crashes: int = 0
    orders: int = 0
    violations: list[str] = field(default_factory=list)
    # Identical copies of a message the audit found (a kill after the relay's
    # accept, before the mark): the at-least-once price, not a violation.
    resends: int = 0


@dataclass
class FaultStack:
    workdir: Path
    postgres: Postgres
    temporal_server: TemporalServer
    temporal: Client
    engine: AsyncEngine
    sessions: SessionFactory
    smtp_port: int
    signing_key_pem: str
    counters: Counters = field(default_factory=Counters)

    @asynccontextmanager
    async def scenario(
        self, *, payment_deadline: float = PAYMENT_DEADLINE
    ) -> AsyncIterator[Scenario]:
        async with self.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
        settings = Settings(
            mode="dev",
            data_dir=self.workdir / "data",
            database_url=self.postgres.url,
            temporal_address=self.temporal_server.address,
            task_queue=f"faults-{uuid.uuid4()}",
            jwt_private_keys=[SecretStr(self.signing_key_pem)],
            checkout_rate_limit=0,
            payment_provider_timeout_seconds=PROVIDER_TIMEOUT,
            payment_deadline_seconds=payment_deadline,
            smtp_host="127.0.0.1",
            smtp_port=self.smtp_port,
            _env_file=None,
        )
        customer = await create_user(self.sessions)
        admin = await create_user(self.sessions, role=Role.ADMIN)
        workers: list[WorkerProcess] = []
        self.counters.cases += 1
        try:
            async with api_client(settings, self.temporal) as api:
                yield Scenario(self, settings, api, customer, admin, workers)
        finally:
            for worker in workers:
                worker.kill()


@dataclass
class Scenario:
    stack: FaultStack
    settings: Settings
    api: httpx.AsyncClient
    customer: User
    admin: User
    workers: list[WorkerProcess]

    @property
    def sessions(self) -> SessionFactory:
        return self.stack.sessions

    def worker_env(self) -> dict[str, str]:
        # Nothing inherited may point the worker elsewhere.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORDERSAGA_", "TEMPORAL_")) and k != "DATABASE_URL"
        }
        s = self.settings
        env.update(
            {
                "ORDERSAGA_MODE": "dev",
                "ORDERSAGA_DATA_DIR": str(self.stack.workdir / "worker-data"),
                "DATABASE_URL": self.stack.postgres.url,
                "TEMPORAL_ADDRESS": self.stack.temporal_server.address,
                "ORDERSAGA_TASK_QUEUE": s.task_queue,
                "ORDERSAGA_SMTP_HOST": s.smtp_host,
                "ORDERSAGA_SMTP_PORT": str(s.smtp_port),
                "ORDERSAGA_PAYMENT_PROVIDER_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT),
                "ORDERSAGA_PAYMENT_DEADLINE_SECONDS": str(s.payment_deadline_seconds),
                "ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS": "1",
                "ORDERSAGA_DB_POOL_SIZE": "5",
                "ORDERSAGA_LOG_LEVEL": "WARNING",
            }
        )
        return env

    def start_worker(
        self, fault_point: str | None = None, *, source: Path | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess(self.worker_env(), self.stack.workdir, fault_point, source=source)
        self.workers.append(worker)
        return worker.start()

    async def crash(self, worker: WorkerProcess) -> None:
        """SIGKILL ``worker`` once an activity is parked at its fault point."""
        await worker.wait_for_fault()
        worker.kill()
        self.stack.counters.crashes += 1

    # --- orders -------------------------------------------------------------

    async def product(self, *, price: int = 1250, stock: int = 100) -> Product:
        return await create_product(self.sessions, price=price, stock=stock)

    async def place(
        self,
        lines: Iterable[tuple[Product, int]],
        *,
        token: str = "tok_visa",
        user: User | None = None,
    ) -> str:
        headers = auth_header(self.settings, user or self.customer)
        response = await checkout(self.api, headers, order_body(*lines, token=token))
        assert response.status_code == 202, response.text
        self.stack.counters.orders += 1
        order_id: str = response.json()["id"]
        return order_id

    async def statuses(self, order_ids: Iterable[str]) -> dict[str, str]:
        ids = [uuid.UUID(i) for i in order_ids]
        async with self.sessions() as session:
            rows = await session.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))
        return {str(order_id): status.value for order_id, status in rows}

    async def settled(
        self, expected: Mapping[str, set[str]], *, timeout: float = SETTLE_TIMEOUT
    ) -> dict[str, str]:
        """Every order's status once each is in its expected set and has had its message.

        Bounded: after ``timeout`` it returns the statuses as they are, and the
        caller reports the orders that did not get there.
        """
        deadline = time.monotonic() + timeout
        while True:
            statuses: dict[str, str] | None = await self._try(self.statuses(expected))
            if statuses is not None and all(
                statuses.get(i) in allowed for i, allowed in expected.items()
            ):
                if await self._try(self._messages_out(statuses)):
                    return statuses
            if time.monotonic() > deadline:
                return statuses or {}
            await asyncio.sleep(0.2)

    async def _messages_out(self, statuses: dict[str, str]) -> bool:
        """The status's notification (confirmed, payment_failed, ...) has been sent."""
        async with self.sessions() as session:
            sent = set(
                await session.execute(
                    select(Notification.order_id, Notification.kind).where(
                        Notification.status == NotificationStatus.SENT,
                        Notification.channel == "email",
                    )
                )
            )
        return all((uuid.UUID(i), _NOTICES[s]) in sent for i, s in statuses.items())

    async def _try(self, work: Any) -> Any:
        # The database may be down on purpose while we poll.
        try:
            return await work
        except Exception:
            return None

    async def charges_per_order(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(SimulatorCharge.idempotency_key, func.count())
                .where(SimulatorCharge.status == "captured")
                .group_by(SimulatorCharge.idempotency_key)
            )
        return {key.removeprefix("charge-"): count for key, count in rows}

    async def check(self, expected: Mapping[str, str | set[str]]) -> list[str]:
        """Violations: wrong end states, a second charge, and whatever the audit finds."""
        allowed_states = {i: w if isinstance(w, set) else {w} for i, w in expected.items()}
        statuses = await self.settled(allowed_states)
        problems = []
        for order_id, allowed in allowed_states.items():
            got = statuses.get(order_id)
            if got not in allowed:
                problems.append(f"order {order_id}: {got}, expected {' or '.join(sorted(allowed))}")
        charges = await self.charges_per_order()
        for order_id, status in statuses.items():
            # Exactly one charge for an order that keeps money, never two for any.
            count = charges.get(order_id, 0)
            if count > 1 or (status in KEEPS_MONEY and count != 1):
                problems.append(f"order {order_id} ({status}): {count} captures")
        report = await self.audit()
        problems += report.violations
        # The audit sees the whole database; a scenario's tables start empty.
        self.stack.counters.resends += report.resends
        self.stack.counters.violations += problems
        return problems

    async def audit(self) -> AuditReport:
        return await run_audit(
            self.sessions,
            temporal=self.stack.temporal,
            stuck_after=timedelta(seconds=PAYMENT_DEADLINE + SETTLE_TIMEOUT),
        )


PENDING = OrderStatus.PENDING.value
# The message each settled status sends.
_NOTICES = {
    "confirmed": NotificationKind.CONFIRMED.value,
    "shipped": NotificationKind.SHIPPED.value,
    "delivered": NotificationKind.DELIVERED.value,
    "rejected": NotificationKind.REJECTED.value,
    "payment_failed": NotificationKind.PAYMENT_FAILED.value,
    "cancelled": NotificationKind.CANCELLED.value,
}


@asynccontextmanager
async def fault_stack() -> AsyncIterator[FaultStack]:
    """PostgreSQL, Temporal and an SMTP sink of its own; everything stopped at the end."""
    # Short path: PostgreSQL's unix socket lives in the data directory.
    workdir = Path(tempfile.mkdtemp(prefix="osf-"))
    postgres = Postgres(workdir / "pg")
    server = TemporalServer(workdir)
    engine: AsyncEngine | None = None
    sink: asyncio.Server | None = None
    try:
        url = await asyncio.to_thread(postgres.start_first)
        await asyncio.to_thread(upgrade, url)
        temporal = await server.start()
        engine = create_engine(url, pool_size=5)
        sessions = create_session_factory(engine)
        smtp_port = free_port()
        sink = await start_smtp_sink(sessions, "127.0.0.1", smtp_port)
        yield FaultStack(
            workdir,
            postgres,
            server,
            temporal,
            engine,
            sessions,
            smtp_port,
            generate_private_key_pem(),
        )
    finally:
        if sink is not None:
            sink.close()
        if engine is not None:
            await engine.dispose()
        server.stop()
        await asyncio.to_thread(postgres.destroy)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
