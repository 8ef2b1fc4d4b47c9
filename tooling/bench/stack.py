"""One running stack of the bench: its processes, database, Temporal client, API client, orders.

The main stack runs the product as shipped plus the ceilings; the naive stack
runs ceiling (d). Both use one PostgreSQL server (a database each) and one
signing key, so every process verifies every token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.db import SessionFactory, create_engine, create_session_factory
from tooling.bench import statements
from tooling.bench.ceilings import CEILING_TASK_QUEUE
from tooling.bench.driver import WAIT_SECONDS
from tooling.bench.processes import (
    Postgres,
    Processes,
    child_env,
    create_database,
    start_temporal,
    wait_for_api,
    wait_for_pollers,
    wait_for_port,
)
from tooling.bench.shop import Shop
from tooling.processes import free_port, python_module


@dataclass
class Stack:
    name: str
    processes: Processes
    engine: AsyncEngine
    sessions: SessionFactory
    api: httpx.AsyncClient
    temporal: Client
    shop: Shop | None = None
    # Every order the bench placed on this stack (warm-up and failures
    # included): the books must account for each one.
    order_ids: list[str] = field(default_factory=list)
    # Orders the floor wrote with no saga behind them: the audit's workflow
    # checks skip these (everything else judges them like the saga's).
    sagaless_order_ids: list[str] = field(default_factory=list)

    async def close(self) -> None:
        await self.api.aclose()
        await self.processes.stop_all()
        await self.engine.dispose()


async def start_stack(
    name: str,
    *,
    postgres: Postgres,
    database: str,
    data_dir: Path,
    signing_key: str,
    task_queue: str,
    naive: bool,
) -> Stack:
    """Start the stack's processes and wait until each one serves; stop them all on failure."""
    url = await create_database(postgres, database)
    # Each process connects as its own role, so pg_stat_statements tells
    # their statements apart, and the bench's own queries from both
    # (tooling.bench.statements).
    api_url, worker_url, driver_url = (
        postgres.url(database, role=role)
        for role in (statements.API_ROLE, statements.WORKER_ROLE, statements.DRIVER_ROLE)
    )
    processes = Processes(data_dir / "logs" / name)
    api_port, smtp_port = free_port(), free_port()
    try:
        # The naive stack runs the dev server as it comes: no tuning, no pragmas.
        db_file = data_dir / f"temporal-{name}.db"
        temporal, address = await start_temporal(processes, db_file=db_file, tuned=not naive)
        env = child_env(
            data_dir=data_dir / name,
            database_url=url,
            temporal_address=address,
            smtp_port=smtp_port,
            signing_key_pem=signing_key,
        )
        env["ORDERSAGA_TASK_QUEUE"] = task_queue
        processes.start("smtp", python_module("tooling.bench.smtp", "--port", str(smtp_port)), env)
        worker_env = {**env, "DATABASE_URL": worker_url}
        if naive:
            processes.start("worker", python_module("tooling.bench.worker", "--naive"), worker_env)
            # No metrics page: its fixed default port would clash between stacks.
            api_cmd = python_module(
                "tooling.cli", "api", "--port", str(api_port), "--metrics-port", "0"
            )
        else:
            processes.start("worker", python_module("tooling.bench.worker"), worker_env)
            api_cmd = python_module("tooling.bench.server", "--port", str(api_port))
        processes.start("api", api_cmd, {**env, "DATABASE_URL": api_url})
        await wait_for_port(processes, smtp_port)
        await wait_for_pollers(processes, temporal, task_queue)
        if not naive:
            await wait_for_pollers(processes, temporal, CEILING_TASK_QUEUE)
        api_url = f"http://127.0.0.1:{api_port}"
        await wait_for_api(processes, api_url)
    except BaseException:  # Ctrl-C included: nothing may outlive the bench
        await processes.stop_all()
        raise
    engine = create_engine(driver_url, pool_size=4)
    api = httpx.AsyncClient(
        base_url=api_url,
        # A saga answers within Prefer: wait; anything longer is a failure.
        timeout=WAIT_SECONDS * 2,
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
    )
    return Stack(name, processes, engine, create_session_factory(engine), api, temporal)
