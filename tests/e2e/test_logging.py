"""Log lines: JSON in production, text in dev, each naming its request, order and workflow.

The end-to-end test captures everything the API and the real worker log (at
DEBUG, the most a deployment could turn on) during a checkout and checks that
the request ID travels from the HTTP call into the saga and its activities,
and that the card token never appears.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from core import log_context
from core.db import SessionFactory
from core.log_context import LogContextFilter
from core.logging import JsonFormatter, TextFormatter, uses_json
from core.settings import Settings
from tests.support.observability_support import (
    Processes,
    place_order,
    process_settings,
    running_processes,
)

pytestmark = pytest.mark.timeout(180)


def _handler(formatter: logging.Formatter) -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.setFormatter(formatter)
    return handler, stream


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record of this process, as the production JSON lines, for the test's duration."""
    handler, stream = _handler(JsonFormatter("test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_context_fields() -> None:
    handler, stream = _handler(JsonFormatter("api"))
    log = logging.getLogger("ordersaga.test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        with log_context.bound(request_id="req-1", order_id=None, workflow_id=None):
            log_context.set_saga("order-1234")
            log.warning("paid %s", "order")
        log.warning("outside any request")
    finally:
        log.removeHandler(handler)
        log.propagate = True

    inside, outside = _lines(stream)
    assert inside["message"] == "paid order"
    assert inside["process"] == "api"
    assert inside["level"] == "WARNING"
    assert (inside["request_id"], inside["order_id"], inside["workflow_id"]) == (
        "req-1",
        "1234",
        "order-1234",
    )
    # The block restored the context: nothing leaks into later lines.
    assert not {"request_id", "order_id", "workflow_id"} & set(outside)


def test_the_sdks_workflow_extra_names_the_order() -> None:
    handler, stream = _handler(JsonFormatter("worker"))
    record = logging.LogRecord("temporalio.activity", logging.WARNING, __file__, 1, "x", None, None)
    record.temporal_activity = {"workflow_id": "order-abc", "activity_type": "charge_payment"}
    handler.handle(record)
    (line,) = _lines(stream)
    assert (line["workflow_id"], line["order_id"]) == ("order-abc", "abc")


def test_text_lines_end_with_the_order_and_request() -> None:
    handler, stream = _handler(TextFormatter("%(levelname)s %(message)s%(context)s"))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "placed", None, None)
    with log_context.bound(request_id="r-9", order_id=None, workflow_id=None):
        log_context.set_saga("order-42")
        handler.handle(record)
    assert stream.getvalue().strip() == "INFO placed [order=42 request=r-9]"


@pytest.mark.parametrize(
    ("mode", "log_format", "json_lines"),
    [
        ("dev", None, False),
        ("production", None, True),
        ("dev", "json", True),
        ("production", "text", False),
    ],
)
def test_json_in_production_text_in_dev_unless_chosen(
    mode: str, log_format: str | None, json_lines: bool, settings: Settings
) -> None:
    chosen = settings.model_copy(update={"mode": mode, "log_format": log_format})
    assert uses_json(chosen) is json_lines


def test_log_format_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_LOG_FORMAT", "json")
    assert Settings(_env_file=None).log_format == "json"  # type: ignore[call-arg]
    monkeypatch.setenv("ORDERSAGA_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert [e["loc"] for e in refused.value.errors()] == [("log_format",)]


@pytest.fixture(scope="module")
async def processes(
    database_url: str,
    signing_key_pem: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Processes]:
    settings = process_settings(database_url, signing_key_pem, tmp_path_factory.mktemp("logging"))
    address = temporal_dev_server.client.service_client.config.target_host
    async with running_processes(settings, address, database_url) as running:
        yield running


async def test_a_checkout_is_logged_with_its_ids_and_without_its_card_token(
    processes: Processes, sessions: SessionFactory, captured: io.StringIO
) -> None:
    # An unknown token is declined: the failure path logs the most.
    token = f"tok_secret_{uuid.uuid4().hex}"
    request_id = f"req-{uuid.uuid4().hex[:12]}"

    response = await place_order(processes, sessions, token=token, request_id=request_id)

    assert response.headers["X-Request-ID"] == request_id
    assert response.json()["status"] == "payment_failed"
    order_id = response.json()["id"]
    text = captured.getvalue()
    assert token not in text
    lines = _lines(captured)
    ours = [line for line in lines if line.get("request_id") == request_id]
    loggers = {line["logger"] for line in ours}
    # The API placing it, the workflow compensating it, the activities doing the work.
    assert "api.checkout" in loggers
    assert "temporalio.workflow" in loggers
    assert "ordersaga.worker.metrics" in loggers
    assert all(line["order_id"] == order_id for line in ours)
    assert all(line["workflow_id"] == f"order-{order_id}" for line in ours)
    activities = {
        line["message"].split()[1] for line in ours if line["message"].startswith("activity ")
    }
    assert {"reserve_stock", "charge_payment", "release_stock", "refund_payment"} <= activities


async def test_a_request_id_is_made_up_when_none_or_a_bad_one_is_sent(
    processes: Processes,
) -> None:
    made_up = await processes.api.get("/healthz")
    # Spaces and quotes could fake fields in a text line: replaced, not echoed.
    forged = await processes.api.get("/healthz", headers={"X-Request-ID": 'a" level="ERROR'})
    assert len(made_up.headers["X-Request-ID"]) == 32
    assert len(forged.headers["X-Request-ID"]) == 32
    assert made_up.headers["X-Request-ID"] != forged.headers["X-Request-ID"]
