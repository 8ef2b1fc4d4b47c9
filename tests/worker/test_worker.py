"""The worker process: real activities on a real server, startup failures, health, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner

from core.db import SessionFactory
from core.models import Order, Payment, Product
from core.settings import Settings
from tests.support.order_factory import create_order
from tests.support.polling import poll_until
from tests.support.saga_fakes import FakeActivities, checkout_input, start_order
from worker.main import build_worker, run_worker
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RecordingMailer:
    """Stands in for SMTP: keeps what would have been sent."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> None:
        self.subjects.append(subject)


def _address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture
def worker_settings(settings: Settings, temporal_dev_server: WorkflowEnvironment) -> Settings:
    return settings.model_copy(
        update={
            "temporal_address": _address(temporal_dev_server),
            "task_queue": f"worker-test-{uuid.uuid4()}",
            "worker_connect_attempts": 2,
            "worker_graceful_shutdown_seconds": 5.0,
        }
    )


async def _wait_settled(client: Client, order_id: uuid.UUID, sessions: SessionFactory) -> Order:
    handle = client.get_workflow_handle_for(OrderWorkflow.run, f"order-{order_id}")

    async def settled() -> bool:
        return (await handle.query(OrderWorkflow.state)).status != "pending"

    await poll_until(settled, f"order {order_id} leaving pending")
    async with sessions() as session:
        return await session.get_one(Order, order_id, populate_existing=True)


async def test_worker_runs_a_checkout_and_a_cancel_with_the_real_activities(
    temporal_client: Client, worker_settings: Settings, sessions: SessionFactory
) -> None:
    order = await create_order(sessions, token="tok_visa")
    product_id = order.items[0].product_id
    mailer = RecordingMailer()
    worker = build_worker(temporal_client, worker_settings, sessions, mailer=mailer)
    async with worker:
        input = checkout_input(
            order_id=str(order.id), customer_id=str(order.customer_id), total=order.total
        )
        handle = await start_order(temporal_client, worker_settings.task_queue, input)
        confirmed = await _wait_settled(temporal_client, order.id, sessions)
        assert confirmed.status == "confirmed"

        state = await handle.execute_update(OrderWorkflow.cancel, CancelRequest("no longer"))
        assert state.status == "cancelled"
        assert (await handle.result()).status == "cancelled"

    async with sessions() as session:
        order_row = await session.get_one(Order, order.id, populate_existing=True)
        payment = await session.scalar(select(Payment).where(Payment.order_id == order.id))
        product = await session.get_one(Product, product_id, populate_existing=True)
    assert order_row.status == "cancelled"
    assert payment is not None and payment.refunded_amount == order.total
    assert product.stock == 10  # the reserved unit came back
    assert len(mailer.subjects) == 2  # confirmed, then cancelled


async def test_worker_settles_a_declined_card_with_the_stock_back(
    temporal_client: Client, worker_settings: Settings, sessions: SessionFactory
) -> None:
    order = await create_order(sessions, token="tok_chargeDeclined")
    async with build_worker(temporal_client, worker_settings, sessions, mailer=RecordingMailer()):
        input = checkout_input(
            order_id=str(order.id), customer_id=str(order.customer_id), total=order.total
        )
        handle = await start_order(temporal_client, worker_settings.task_queue, input)
        result = await handle.result()

    assert result.status == "payment_failed"
    async with sessions() as session:
        product = await session.get_one(Product, order.items[0].product_id, populate_existing=True)
        order_row = await session.get_one(Order, order.id, populate_existing=True)
    assert order_row.status == "payment_failed"
    assert product.stock == 10


async def test_worker_takes_its_limits_and_queue_from_settings(
    temporal_dev_server: WorkflowEnvironment, worker_settings: Settings, sessions: SessionFactory
) -> None:
    limited = worker_settings.model_copy(
        update={
            "worker_max_concurrent_activities": 7,
            "worker_max_concurrent_workflow_tasks": 3,
            "worker_max_cached_workflows": 11,
        }
    )
    config = build_worker(temporal_dev_server.client, limited, sessions).config()
    assert config["task_queue"] == limited.task_queue
    assert config["max_concurrent_activities"] == 7
    assert config["max_concurrent_workflow_tasks"] == 3
    assert config["max_cached_workflows"] == 11
    # Sandboxed unless turned off.
    assert not isinstance(config.get("workflow_runner"), UnsandboxedWorkflowRunner)
    unsandboxed = limited.model_copy(
        update={"worker_workflow_sandbox": False, "task_queue": f"{limited.task_queue}-2"}
    )
    config = build_worker(temporal_dev_server.client, unsandboxed, sessions).config()
    assert isinstance(config["workflow_runner"], UnsandboxedWorkflowRunner)
    # Every activity the saga calls: the fakes stand in for each one by name.
    assert len(config["activities"]) == len(FakeActivities().all()) == 13


async def test_unreachable_postgres_exits_1_with_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = settings.model_copy(
        update={
            "database_url": f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/orders",
            "temporal_address": f"127.0.0.1:{free_port()}",
            "worker_connect_attempts": 2,
        }
    )

    assert await run_worker(unreachable) == 1

    err = capsys.readouterr().err
    # Retries are logged as warnings; the verdict is one last line.
    verdict = err.splitlines()[-1]
    assert [line for line in err.splitlines() if line.startswith("ordersaga worker:")] == [verdict]
    assert verdict.startswith("ordersaga worker: cannot reach PostgreSQL")
    assert "after 2 attempts" in verdict
    assert "s3cret-pw" not in err


async def test_unreachable_temporal_exits_1_with_one_line(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    unreachable = settings.model_copy(
        update={"temporal_address": address, "worker_connect_attempts": 2}
    )

    assert await run_worker(unreachable) == 1

    verdict = capsys.readouterr().err.splitlines()[-1]
    assert verdict.startswith(f"ordersaga worker: cannot reach Temporal at {address}")
    assert "after 2 attempts" in verdict


@pytest.fixture
async def running_worker(worker_settings: Settings) -> AsyncIterator[tuple[int, asyncio.Event]]:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(worker_settings.model_copy(update={"worker_health_port": port}), stop=stop)
    )
    yield port, stop
    stop.set()
    assert await task == 0


async def _wait_ready(http: httpx.AsyncClient, url: str) -> httpx.Response:
    async def answer() -> httpx.Response | None:
        try:
            response = await http.get(url)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    return await poll_until(answer, f"{url} answering 200")


async def test_health_endpoints_answer(running_worker: tuple[int, asyncio.Event]) -> None:
    port, _ = running_worker
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        ready = await _wait_ready(http, f"{base}/readyz")
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "temporal": "ok", "worker": "ok"},
        }
        assert (await http.get(f"{base}/healthz")).json() == {"status": "ok"}
        assert (await http.get(f"{base}/nope")).status_code == 404
        assert (await http.post(f"{base}/healthz")).status_code == 405


async def test_the_worker_process_stops_gracefully_on_sigterm(
    worker_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_settings.database_url or "",
        "TEMPORAL_ADDRESS": worker_settings.temporal_address or "",
        "ORDERSAGA_TASK_QUEUE": worker_settings.task_queue,
        "ORDERSAGA_WORKER_HEALTH_PORT": str(port),
        "ORDERSAGA_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tooling.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient() as http:
            await asyncio.wait_for(_wait_ready(http, f"http://127.0.0.1:{port}/readyz"), 60)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"worker stopped" in stderr
