"""The API and the worker as their processes run them, in this process, for observability tests.

Unlike ``tests.support.e2e.running_stack``, the worker is started by ``run_worker``
(with its health port, hence its metrics page and the SDK's exporter) and
both sides reach Temporal through ``core.temporal.connect``, so they carry the
interceptors a deployment has: log context, and tracing when it is on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from temporalio.client import Client

from api.main import create_app
from api.metrics import metrics_server
from core.db import SessionFactory, create_engine, create_session_factory
from core.settings import Settings
from core.temporal import connect
from tests.support.e2e import free_port
from tests.support.polling import poll_until
from tooling.smtp_sink import start_smtp_sink
from worker.main import run_worker


@dataclass
class Processes:
    api: httpx.AsyncClient
    api_metrics_url: str  # the API's /metrics, on its own port as `ordersaga api` serves it
    worker_url: str  # the worker's health/metrics endpoint
    settings: Settings


async def _wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:

        async def ready() -> bool:
            try:
                return (await http.get(f"{url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await poll_until(ready, f"the worker at {url} becoming ready")


def process_settings(
    database_url: str, signing_key_pem: str, data_dir: Path, **overrides: Any
) -> Settings:
    """Dev-mode settings for the processes below, on the test database and key."""
    return Settings(
        mode="dev",
        data_dir=data_dir,
        database_url=database_url,
        jwt_private_keys=[SecretStr(signing_key_pem)],
        _env_file=None,  # type: ignore[call-arg]
        **overrides,
    )


@asynccontextmanager
async def running_processes(
    settings: Settings, temporal_address: str, database_url: str
) -> AsyncIterator[Processes]:
    """``run_worker`` on its own task queue and health port, an SMTP sink, and the API."""
    engine = create_engine(database_url, pool_size=2)
    sink_port, health_port = free_port(), free_port()
    sink = await start_smtp_sink(create_session_factory(engine), "127.0.0.1", sink_port)
    settings = settings.model_copy(
        update={
            "temporal_address": temporal_address,
            "task_queue": f"obs-{uuid.uuid4()}",
            "smtp_host": "127.0.0.1",
            "smtp_port": sink_port,
            "worker_health_port": health_port,
            "worker_connect_attempts": 2,
            "worker_graceful_shutdown_seconds": 5.0,
        }
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    worker_url = f"http://127.0.0.1:{health_port}"
    try:
        await _wait_ready(worker_url)
        client = await connect(settings)
        async with _api(settings, client) as (api, metrics_url):
            yield Processes(api, metrics_url, worker_url, settings)
    finally:
        stop.set()
        assert await worker == 0
        sink.close()
        await sink.wait_closed()
        await engine.dispose()


@asynccontextmanager
async def _api(settings: Settings, client: Client) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API in-process, with its metrics page served as api/serve.py serves it."""
    app = create_app(settings, temporal_client=client)
    server = metrics_server(app.state.metrics, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
                yield api, f"http://127.0.0.1:{server.port}/metrics"
    finally:
        await server.close()


async def scrape(url: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.text


def samples(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(page: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples(page).get((name, frozenset(labels.items())), 0.0)


def metric_names(pages: Iterable[str]) -> set[str]:
    """Family and sample names (``x``, ``x_total``, ``x_bucket``...) the pages expose."""
    names: set[str] = set()
    for page in pages:
        for family in text_string_to_metric_families(page):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
    return names


async def place_order(
    processes: Processes,
    sessions: SessionFactory,
    *,
    token: str = "tok_visa",
    request_id: str | None = None,
) -> httpx.Response:
    """A customer checks out one product and waits for the saga to settle."""
    from tests.support.e2e import checkout, order_body
    from tests.support.factories import auth_header, create_product, create_user

    customer = await create_user(sessions)
    product = await create_product(sessions, price=1250, stock=5)
    headers = auth_header(processes.settings, customer)
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    response = await checkout(
        processes.api, headers, order_body((product, 1), token=token), wait=30
    )
    assert response.status_code == 200, response.text
    return response
