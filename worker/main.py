"""The Temporal worker: runs ``OrderWorkflow`` and its activities on the orders task queue.

``build_worker`` builds every activity object once, with its dependencies, and
registers the bound methods; tests pass other dependencies (a fake provider,
a mailer that fails). ``run_worker`` is the ``ordersaga worker`` process:
connect (with bounded retries), serve the health endpoint, run until SIGTERM
or SIGINT, then shut down gracefully: polling stops, activities in flight get
``worker_graceful_shutdown_seconds`` to finish, and whatever is still running
is cancelled and retried by another worker (every activity is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.inventory import InventoryActivities
from activities.mailer import Mailer, SmtpMailer
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from activities.payment_provider import PaymentProvider
from activities.payment_simulator import PaymentSimulator
from activities.payments import PaymentActivities
from activities.shipping import ShippingActivities
from activities.sms import SmsSender, build_sms
from core import tracing
from core.db import SessionFactory, create_engine, create_session_factory, sqlalchemy_url
from core.settings import Settings
from core.temporal import connect
from worker import metrics
from worker.health import HealthServer
from workflows.checkout import OrderWorkflow

logger = logging.getLogger("ordersaga.worker")

T = TypeVar("T")

_MAX_CONNECT_DELAY = 10.0


def build_activities(
    settings: Settings,
    sessions: SessionFactory,
    *,
    provider: PaymentProvider | None = None,
    mailer: Mailer | None = None,
    sms: SmsSender | None = None,
) -> Sequence[Callable[..., Any]]:
    """Every activity the saga calls, as bound methods of objects built once."""
    if provider is None:
        provider = PaymentSimulator(
            sessions, timeout_seconds=settings.payment_provider_timeout_seconds
        )
    if mailer is None:
        mailer = SmtpMailer.from_settings(settings)
    if sms is None:
        sms = build_sms(settings)
    orders = OrderActivities(sessions)
    inventory = InventoryActivities(sessions)
    payments = PaymentActivities(sessions, provider)
    notifications = NotificationActivities(sessions, mailer, sms)
    shipping = ShippingActivities(sessions)
    return [
        orders.record_order,
        orders.set_status,
        orders.record_event,
        orders.flag_for_attention,
        orders.clear_attention,
        orders.record_shipment,
        inventory.reserve,
        inventory.release,
        inventory.commit,
        shipping.ship,
        payments.charge,
        payments.refund,
        notifications.send,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    *,
    provider: PaymentProvider | None = None,
    mailer: Mailer | None = None,
    sms: SmsSender | None = None,
    task_queue: str | None = None,
) -> Worker:
    """A worker for the saga on ``settings.task_queue``, not yet running."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[OrderWorkflow],
        activities=build_activities(settings, sessions, provider=provider, mailer=mailer, sms=sms),
        **worker_options(settings),
    )


def worker_options(settings: Settings) -> dict[str, Any]:
    """The ``Worker`` options every ordersaga worker runs with: limits, cache, shutdown."""
    options: dict[str, Any] = {
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_graceful_shutdown_seconds),
        # The client's interceptors (log context, tracing) apply as well.
        "interceptors": [metrics.MetricsInterceptor()],
    }
    if not settings.worker_workflow_sandbox:
        options["workflow_runner"] = UnsandboxedWorkflowRunner()
    return options


class StartupError(Exception):
    """A dependency could not be reached after the allowed attempts."""


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Run the worker process until SIGTERM/SIGINT (or ``stop``); the exit code.

    0 after a graceful shutdown; 1, with one line on stderr, when PostgreSQL
    or Temporal cannot be reached at start.
    """
    stop = stop or asyncio.Event()
    engine: AsyncEngine | None = None
    health: HealthServer | None = None
    tracing.setup(settings, "ordersaga-worker")
    # The SDK's metrics are relayed by the health endpoint, so only exported
    # when there is one.
    sdk_metrics_port = metrics.free_loopback_port() if settings.worker_health_port else None
    try:
        engine = await _connect_database(settings)
        client = await _connect_temporal(settings, sdk_metrics_port)
    except StartupError as err:
        sys.stderr.write(f"ordersaga worker: {err}\n")
        if engine is not None:
            await engine.dispose()
        return 1

    worker = build_worker(client, settings, create_session_factory(engine))
    loop = asyncio.get_running_loop()
    handled = _on_signals(loop, stop)
    try:
        if settings.worker_health_port:
            health = HealthServer(
                _readiness_checks(engine, client, worker),
                host="127.0.0.1" if settings.is_dev else "0.0.0.0",
                port=settings.worker_health_port,
                metrics=metrics.MetricsPage(sdk_metrics_port).render,
            )
            await health.start()
        running = asyncio.create_task(worker.run())
        stopping = asyncio.create_task(stop.wait())
        logger.info("worker polling task queue %s", settings.task_queue)
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            stopping.cancel()
            running.result()  # the worker stopped on its own: raise why
            return 1
        logger.info("worker shutting down: waiting for activities in flight")
        await worker.shutdown()
        await running
        logger.info("worker stopped")
        return 0
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if health is not None:
            await health.close()
        await engine.dispose()


def _on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[signal.Signals]:
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / platform
            pass
    return handled


def _readiness_checks(
    engine: AsyncEngine, client: Client, worker: Worker
) -> dict[str, Callable[[], Awaitable[str | None]]]:
    async def database() -> str | None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None

    async def temporal() -> str | None:
        await client.service_client.check_health()
        return None

    async def polling() -> str | None:
        return None if worker.is_running and not worker.is_shutdown else "not polling"

    return {"database": database, "temporal": temporal, "worker": polling}


async def _connect_database(settings: Settings) -> AsyncEngine:
    if not settings.database_url:
        raise StartupError("DATABASE_URL is not set")
    # No ping before use: every activity retries a failed attempt anyway
    # (see create_engine).
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        ping_after_idle=None,
        prepared_statements=settings.db_prepared_statements,
    )

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # The password never reaches a log line or the terminal.
    where = make_url(sqlalchemy_url(settings.database_url)).render_as_string(hide_password=True)
    try:
        await _with_retries(ping, f"PostgreSQL at {where}", settings.worker_connect_attempts)
    except StartupError:
        await engine.dispose()
        raise
    return engine


async def _connect_temporal(settings: Settings, sdk_metrics_port: int | None) -> Client:
    try:
        from core.temporal import resolve_temporal_address

        address = resolve_temporal_address(settings)
    except RuntimeError as err:
        raise StartupError(str(err)) from None
    runtime = metrics.sdk_runtime(sdk_metrics_port) if sdk_metrics_port else None
    return await _with_retries(
        lambda: connect(settings, address=address, runtime=runtime),
        f"Temporal at {address} (namespace {settings.temporal_namespace})",
        settings.worker_connect_attempts,
    )


async def _with_retries(attempt: Callable[[], Awaitable[T]], what: str, attempts: int) -> T:
    """Try ``attempts`` times, waiting 1 s, 2 s, 4 s... (at most 10 s) in between."""
    delay = 1.0
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as err:  # drivers raise many kinds; all mean "not reachable yet"
            reason = _first_line(err)
            if number == attempts:
                raise StartupError(
                    f"cannot reach {what} after {attempts} attempts: {reason}"
                ) from None
            logger.warning("cannot reach %s (attempt %d of %d): %s", what, number, attempts, reason)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_CONNECT_DELAY)
    raise AssertionError("unreachable")  # attempts >= 1


def _first_line(err: BaseException) -> str:
    message = str(err).strip()
    return message.splitlines()[0] if message else type(err).__name__
