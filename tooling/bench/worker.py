"""The bench's worker process: the product worker, and the ceilings' worker beside it.

``python -m tooling.bench.worker`` runs, in one process and on one client, the
product worker exactly as ``ordersaga worker`` builds it
(``worker.main.build_worker``) and a second worker for ceilings (a) and (b)
on their own task queue. The ceilings are measured in the same process as the
saga, with the same slot limits, so their ratios compare like with like.

``python -m tooling.bench.worker --naive`` runs ceiling (d) instead: the naive
saga (``tooling.bench.naive.NaiveOrderWorkflow``, registered under the product
workflow's type name) with the product's activities, on the product task
queue, for the API of the naive stack to start.

Settings come from the environment, as for ``ordersaga worker``. It runs until
SIGTERM or SIGINT, then shuts both workers down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from core.db import SessionFactory, create_engine, create_session_factory
from core.settings import Settings
from core.temporal import connect
from tooling.bench import ceilings
from tooling.bench.naive import NaiveOrderWorkflow
from worker.main import build_activities, build_worker, worker_options


def _worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
) -> Worker:
    # The product worker's options (limits, cache, interceptors), for every worker here.
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        **worker_options(settings),
    )


def build_workers(
    client: Client, settings: Settings, sessions: SessionFactory, *, naive: bool
) -> list[Worker]:
    if naive:
        return [
            _worker(
                client,
                settings,
                task_queue=settings.task_queue,
                workflows=[NaiveOrderWorkflow],
                activities=build_activities(settings, sessions),
            )
        ]
    return [
        build_worker(client, settings, sessions),
        _worker(
            client,
            settings,
            task_queue=ceilings.CEILING_TASK_QUEUE,
            workflows=ceilings.WORKFLOWS,
            activities=ceilings.ACTIVITIES,
        ),
    ]


async def serve(settings: Settings, *, naive: bool) -> int:
    assert settings.database_url, "the bench passes DATABASE_URL"
    # As the product worker (worker.main._connect_database).
    engine = create_engine(
        settings.database_url, pool_size=settings.db_pool_size, ping_after_idle=None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        client = await connect(settings)
        workers = build_workers(client, settings, create_session_factory(engine), naive=naive)
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await stop.wait()
        return 0
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    from core.logging import configure_logging
    from tooling.cli import exit_process

    parser = argparse.ArgumentParser(description="the bench's worker process")
    parser.add_argument("--naive", action="store_true", help="run ceiling (d), the naive saga")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings, process="worker")
    code = asyncio.run(serve(settings, naive=args.naive))
    # As `ordersaga worker`: skip interpreter finalization once the SDK is loaded.
    exit_process(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
