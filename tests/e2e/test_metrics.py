"""Prometheus metrics: the API's and the worker's /metrics move with real checkouts.

The worker runs as ``ordersaga worker`` runs it (``run_worker`` with its health
port), so its page is the merged one: ordersaga's counters and the Temporal
SDK's own metrics relayed from the runtime's exporter. The Grafana dashboard
is checked against the names these pages really expose.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.auth.app import create_auth_app
from api.main import create_app
from api.serve import serve
from core.db import SessionFactory
from core.settings import Settings
from tests.support.e2e import checkout, free_port, order_body
from tests.support.factories import auth_header, create_product, create_user
from tests.support.observability_support import (
    Processes,
    metric_names,
    place_order,
    process_settings,
    running_processes,
    scrape,
    value,
)

pytestmark = pytest.mark.timeout(180)

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "ordersaga-dashboard.json"


@pytest.fixture(scope="module")
async def processes(
    database_url: str,
    signing_key_pem: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Processes]:
    settings = process_settings(database_url, signing_key_pem, tmp_path_factory.mktemp("metrics"))
    address = temporal_dev_server.client.service_client.config.target_host
    async with running_processes(settings, address, database_url) as running:
        yield running


async def api_page(processes: Processes) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(processes.api_metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_api_counts_requests_by_route_template_and_accepted_orders(
    processes: Processes, sessions: SessionFactory
) -> None:
    before = await api_page(processes)
    customer = await create_user(sessions)
    product = await create_product(sessions, stock=5)
    headers = auth_header(processes.settings, customer)
    body = order_body((product, 1))
    key = str(uuid.uuid4())

    placed = await checkout(processes.api, headers, body, key=key, wait=30)
    replayed = await checkout(processes.api, headers, body, key=key, wait=30)
    assert placed.status_code == replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    order_id = placed.json()["id"]
    assert (await processes.api.get(f"/orders/{order_id}", headers=headers)).status_code == 200
    assert (await processes.api.get(f"/no-such-path/{order_id}")).status_code == 404

    after = await api_page(processes)
    post = {"method": "POST", "route": "/orders", "status": "200"}
    assert value(after, "ordersaga_http_requests_total", **post) - value(
        before, "ordersaga_http_requests_total", **post
    ) == pytest.approx(2)
    # The replay is the same order, not a second one.
    assert value(after, "ordersaga_orders_accepted_total") - value(
        before, "ordersaga_orders_accepted_total"
    ) == pytest.approx(1)
    get = {"method": "GET", "route": "/orders/{order_id}", "status": "200"}
    assert value(after, "ordersaga_http_request_duration_seconds_count", **get) >= 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "ordersaga_http_requests_total", **unmatched) >= 1
    # Raw paths never become labels: one series per order would be unbounded.
    assert order_id not in after


async def test_worker_metrics_count_saga_outcomes_compensations_and_activities(
    processes: Processes, sessions: SessionFactory
) -> None:
    metrics_url = f"{processes.worker_url}/metrics"
    before = await scrape(metrics_url)

    confirmed = await place_order(processes, sessions)
    declined = await place_order(processes, sessions, token="tok_chargeDeclined")
    assert confirmed.json()["status"] == "confirmed"
    assert declined.json()["status"] == "payment_failed"

    after = await scrape(metrics_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    outcomes = "ordersaga_saga_outcomes_total"
    assert moved(outcomes, status="confirmed") == pytest.approx(1)
    assert moved(outcomes, status="payment_failed") == pytest.approx(1)
    # Only the declined order was compensated: its stock released, its charge voided.
    compensations = "ordersaga_compensations_total"
    assert moved(compensations, step="release_stock", outcome="completed") == pytest.approx(1)
    assert moved(compensations, step="refund_payment", outcome="completed") == pytest.approx(1)
    charges = "ordersaga_activity_duration_seconds_count"
    assert moved(charges, activity="charge_payment", outcome="completed") == pytest.approx(1)
    assert moved(charges, activity="charge_payment", outcome="failed") >= 1
    # The Temporal SDK's own metrics come through the same page.
    sdk = {
        "activity_type": "reserve_stock",
        "namespace": "default",
        "service_name": "temporal-core-sdk",
        "task_queue": processes.settings.task_queue,
        "workflow_type": "OrderWorkflow",
    }
    # reserve_stock is a local activity of the workflow task (LOCAL_FORWARD_STEPS).
    assert moved("temporal_local_activity_execution_latency_count", **sdk) == pytest.approx(2)
    assert re.search(r"^temporal_worker_task_slots_available\{", after, re.MULTILINE)


def _queried_metric_names(dashboard: dict[str, object]) -> set[str]:
    """Metric names in the dashboard's PromQL: identifiers that are not functions or labels."""
    exprs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(dashboard)
    assert exprs, "the dashboard has no queries"
    names: set[str] = set()
    for expr in exprs:
        # Drop label matchers {...}, grouping clauses (by (...)) and ranges [...].
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
        names.update(
            token
            for token in re.findall(r"\b[a-z_][a-z0-9_]*\b(?!\s*\()", bare)
            if token.startswith(("ordersaga_", "temporal_", "process_"))
        )
    return names


async def test_the_dashboard_queries_only_metrics_the_processes_export(
    processes: Processes, sessions: SessionFactory
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    # A checkout and a declined one make every labelled series exist.
    await place_order(processes, sessions)
    await place_order(processes, sessions, token="tok_chargeDeclined")
    pages = [await api_page(processes), await scrape(f"{processes.worker_url}/metrics")]
    exported = metric_names(pages)

    queried = _queried_metric_names(dashboard)
    assert {"ordersaga_saga_outcomes_total", "ordersaga_orders_accepted_total"} <= queried
    assert queried - exported == set()


async def test_worker_health_endpoints_still_answer_json(processes: Processes) -> None:
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{processes.worker_url}/readyz")
        missing = await http.get(f"{processes.worker_url}/metricsx")
    assert ready.json()["status"] == "ready"
    assert missing.status_code == 404


# --- the page is not on the public port ----------------------------------------


async def _until_answering(http: httpx.AsyncClient, url: str) -> None:
    for _ in range(400):  # 20 s at most: uvicorn and the lifespan are starting
        try:
            if (await http.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("service", ["api", "auth"])
async def test_metrics_are_served_on_their_own_port_not_the_public_one(
    settings: Settings, temporal_client: Client, service: str
) -> None:
    # As `ordersaga api` / `ordersaga auth` run: uvicorn on the public port,
    # the metrics page beside it.
    app = (
        create_app(settings, temporal_client=temporal_client)
        if service == "api"
        else create_auth_app(settings)
    )
    public, private = free_port(), free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(app, host="127.0.0.1", port=public, metrics_port=private, stop=stop)
    )
    try:
        async with httpx.AsyncClient() as http:
            await _until_answering(http, f"http://127.0.0.1:{public}/healthz")
            exposed = await http.get(f"http://127.0.0.1:{public}/metrics")
            page = await http.get(f"http://127.0.0.1:{private}/metrics")
            elsewhere = await http.get(f"http://127.0.0.1:{private}/healthz")
    finally:
        stop.set()
        await server

    assert exposed.status_code == 404
    assert "ordersaga_" not in exposed.text
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(page.text, "ordersaga_http_requests_total", **healthz) >= 1
    # The metrics port serves the page and nothing else.
    assert elsewhere.status_code == 404
