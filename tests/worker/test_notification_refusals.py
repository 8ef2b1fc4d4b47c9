"""A relay that refuses our password, through the real worker and saga.

The saga must not retry it for a day: one login attempt, the notification row
marked failed with the cause, ``notification.failed`` on the order's timeline
naming it, and the worker's metric counting it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.errors import MAIL_AUTHENTICATION_FAILED
from core.db import SessionFactory
from core.models import Notification, NotificationStatus, OrderEvent
from core.settings import Settings
from tests.support.order_factory import create_order
from tests.support.saga_fakes import checkout_input, start_order
from tests.support.smtp_relay import USERNAME, RelayInbox, smtp_relay
from tests.support.tls_support import Pki, make_pki
from worker import metrics
from worker.main import build_worker

pytestmark = pytest.mark.timeout(120)

_EVENT_BOUND_SECONDS = 60.0


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[RelayInbox, int, Pki]]:
    pki = make_pki(tmp_path / "pki")
    with smtp_relay(pki) as (inbox, port):
        yield inbox, port, pki


async def _failed_event(sessions: SessionFactory, order_id: uuid.UUID) -> OrderEvent:
    """The order's notification.failed line, polled for within a bound."""
    deadline = asyncio.get_running_loop().time() + _EVENT_BOUND_SECONDS
    while True:
        async with sessions() as session:
            event = await session.scalar(
                select(OrderEvent).where(
                    OrderEvent.order_id == order_id, OrderEvent.type == "notification.failed"
                )
            )
        if event is not None:
            return event
        assert asyncio.get_running_loop().time() < deadline, "no notification.failed line"
        await asyncio.sleep(0.1)


def _failures(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ordersaga_notifications_failed_total", {"reason": reason}
    )
    return value or 0.0


async def test_a_wrong_smtp_password_fails_the_message_once_and_says_why(
    temporal_dev_server: WorkflowEnvironment,
    temporal_client: Client,
    settings: Settings,
    sessions: SessionFactory,
    relay: tuple[RelayInbox, int, Pki],
) -> None:
    inbox, port, pki = relay
    worker_settings = settings.model_copy(
        update={
            "task_queue": f"refusals-{uuid.uuid4()}",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "starttls",
            "smtp_username": USERNAME,
            "smtp_password": SecretStr("not-the-password"),
            "smtp_ca_file": pki.ca_file,
        }
    )
    order = await create_order(sessions, token="tok_visa")
    before = _failures(MAIL_AUTHENTICATION_FAILED)

    async with build_worker(temporal_client, worker_settings, sessions):
        input = checkout_input(
            order_id=str(order.id), customer_id=str(order.customer_id), total=order.total
        )
        await start_order(temporal_client, worker_settings.task_queue, input)
        event = await _failed_event(sessions, order.id)

    assert MAIL_AUTHENTICATION_FAILED in event.detail
    assert inbox.auth_attempts == 1  # not retried
    assert inbox.messages == []
    async with sessions() as session:
        row = await session.scalar(select(Notification).where(Notification.order_id == order.id))
    assert row is not None
    assert row.status is NotificationStatus.FAILED
    assert row.failure == MAIL_AUTHENTICATION_FAILED
    assert _failures(MAIL_AUTHENTICATION_FAILED) == before + 1
