"""GET /admin/orders/{id}/progress and POST .../retry against the real saga.

Real API, real worker, Temporal dev server and payment simulator. The
provider timeout is 1 s, so a ``tok_timeout`` charge fails an attempt each
second and then waits on its back-off (1, 2, 4, 8 s). A worker whose
database is unreachable makes the first local step (record_order) fail and
wait on its durable retry timer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client

from core.db import SessionFactory, create_engine, create_session_factory
from core.models import OrderEvent, Role
from core.settings import Settings
from tests.support.e2e import api_client, api_with_worker, checkout, order_body, running_stack
from tests.support.factories import auth_header, create_product, create_user
from tests.support.polling import poll_until
from worker.main import build_worker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def queue_settings(settings: Settings, task_queue: str) -> Settings:
    return settings.model_copy(
        update={"task_queue": task_queue, "payment_provider_timeout_seconds": 1.0}
    )


@pytest.fixture
async def orders_api(
    queue_settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_with_worker(queue_settings, sessions, temporal_client) as client:
        yield client


@pytest.fixture
async def admin(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


async def _place(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, token: str
) -> str:
    headers = auth_header(settings, await create_user(sessions))
    product = await create_product(sessions, stock=5)
    response = await checkout(api, headers, order_body((product, 1), token=token))
    assert response.status_code in (200, 201, 202), response.text
    order_id: str = response.json()["id"]
    return order_id


async def _progress(api: httpx.AsyncClient, admin: dict[str, str], order_id: str) -> Any:
    response = await api.get(f"/admin/orders/{order_id}/progress", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def _step(progress: Any, name: str) -> Any:
    return next((w for w in progress["waiting_on"] if w["step"] == name), None)


async def test_a_hanging_charge_shows_its_attempts_and_retry_now_starts_the_next(
    orders_api: httpx.AsyncClient,
    admin: dict[str, str],
    queue_settings: Settings,
    sessions: SessionFactory,
) -> None:
    order_id = await _place(orders_api, queue_settings, sessions, "tok_timeout")

    async def charge_failed_once() -> Any:
        charge = _step(await _progress(orders_api, admin, order_id), "charge_payment")
        return charge if charge and charge["last_failure"] else None

    charge = await poll_until(charge_failed_once, "a failed charge attempt")
    assert charge["kind"] == "activity"
    assert charge["attempt"] >= 1
    progress = await _progress(orders_api, admin, order_id)
    assert progress["status"] == "pending"
    assert progress["workflow"]["state"] == "running"
    assert progress["workflow"]["run_id"]

    # Stuck: pending and no progress for longer than the (overridden) threshold.
    async def listed_as_stuck() -> Any:
        response = await orders_api.get(
            "/admin/orders", params={"stuck": "true", "stuck_after_seconds": 1}, headers=admin
        )
        rows = {row["order"]["id"]: row for row in response.json()["items"]}
        return rows.get(order_id)

    row = await poll_until(listed_as_stuck, "the hanging order listed as stuck")
    assert _step(row["progress"], "charge_payment")["kind"] == "activity"

    # Wait for a back-off of at least 2 s (after the second failed attempt),
    # then ask for the retry while it is still waiting.
    async def in_long_backoff() -> Any:
        charge = _step(await _progress(orders_api, admin, order_id), "charge_payment")
        if charge and charge["attempt"] >= 3 and charge["next_attempt_at"]:
            return charge
        return None

    before = await poll_until(in_long_backoff, "the charge waiting on its back-off")
    response = await orders_api.post(f"/admin/orders/{order_id}/retry", headers=admin)
    if response.status_code == 409:
        # The attempt started on its own between our read and the reset:
        # the retry had nothing left to wait for. Ask again at the next back-off.
        assert response.json()["type"] == "nothing-to-retry"
        before = await poll_until(in_long_backoff, "the charge waiting again")
        response = await orders_api.post(f"/admin/orders/{order_id}/retry", headers=admin)
    assert response.status_code == 202, response.text
    after = _step(response.json(), "charge_payment")
    assert after is not None
    # ResetActivity starts the activity over: the attempt count restarts at
    # 1 and the scheduled attempt is no longer the back-off's.
    assert after["attempt"] < before["attempt"]
    assert after["next_attempt_at"] != before["next_attempt_at"]
    async with sessions() as session:
        lines = list(
            await session.scalars(
                select(OrderEvent.detail).where(
                    OrderEvent.order_id == order_id, OrderEvent.type == "admin.retry"
                )
            )
        )
    assert len(lines) == 1
    assert "charge_payment" in lines[0]


async def test_a_flaky_charge_shows_its_retry_or_completes(
    orders_api: httpx.AsyncClient,
    admin: dict[str, str],
    queue_settings: Settings,
    sessions: SessionFactory,
) -> None:
    order_id = await _place(orders_api, queue_settings, sessions, "tok_flaky")

    async def retried_or_settled() -> Any:
        progress = await _progress(orders_api, admin, order_id)
        charge = _step(progress, "charge_payment")
        if charge and (charge["attempt"] >= 2 or charge["last_failure"]):
            return progress
        return progress if progress["status"] != "pending" else None

    progress = await poll_until(retried_or_settled, "the flaky charge retried or settled")
    if progress["status"] == "pending":
        assert _step(progress, "charge_payment")["kind"] == "activity"
    else:
        assert progress["status"] == "confirmed"


async def test_a_confirmed_order_waits_on_the_shop_not_on_a_step(
    admin: dict[str, str],
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    database_url: str,
) -> None:
    # The whole stack, with an SMTP sink: the confirmation mail is sent.
    async with running_stack(settings, temporal_client, database_url) as stack:
        await _confirmed_order_waits_on_the_shop(stack.api, admin, settings, sessions)


async def _confirmed_order_waits_on_the_shop(
    orders_api: httpx.AsyncClient,
    admin: dict[str, str],
    queue_settings: Settings,
    sessions: SessionFactory,
) -> None:
    order_id = await _place(orders_api, queue_settings, sessions, "tok_visa")

    async def quiet_and_confirmed() -> Any:
        progress = await _progress(orders_api, admin, order_id)
        # The confirmation mail goes out after the pivot; then nothing runs.
        ok = progress["status"] == "confirmed" and progress["waiting_on"] == []
        return progress if ok else None

    progress = await poll_until(quiet_and_confirmed, "the confirmed order with nothing pending")
    assert progress["workflow"]["state"] == "running"
    assert datetime.fromisoformat(progress["since"])
    stuck = await orders_api.get(
        "/admin/orders", params={"stuck": "true", "stuck_after_seconds": 1}, headers=admin
    )
    assert order_id not in {row["order"]["id"] for row in stuck.json()["items"]}
    retry = await orders_api.post(f"/admin/orders/{order_id}/retry", headers=admin)
    assert retry.status_code == 409
    assert retry.json()["type"] == "nothing-to-retry"

    # An admin's ship is on the timeline with who did it.
    shipped = await orders_api.post(f"/orders/{order_id}/ship", headers=admin)
    assert shipped.status_code == 200, shipped.text
    timeline = await orders_api.get(f"/orders/{order_id}/timeline", headers=admin)
    assert "admin.ship" in {event["type"] for event in timeline.json()["events"]}


async def test_a_local_step_waiting_on_its_retry_timer_shows_as_local(
    queue_settings: Settings,
    admin: dict[str, str],
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    # The worker's database is unreachable (nothing listens on port 1); the
    # API's is the real one, so the order is placed and its saga started.
    engine = create_engine("postgresql://nobody:x@127.0.0.1:1/none", pool_size=1)
    try:
        async with (
            build_worker(temporal_client, queue_settings, create_session_factory(engine)),
            api_client(queue_settings, temporal_client) as api,
        ):
            order_id = await _place(api, queue_settings, sessions, "tok_visa")

            async def local_retry() -> Any:
                step = _step(await _progress(api, admin, order_id), "record_order")
                return step if step and step["attempt"] >= 2 else None

            step = await poll_until(local_retry, "record_order waiting on its retry timer")
            assert step["kind"] == "local_activity"
            assert step["last_failure"]
            assert step["next_attempt_at"] is not None
            assert step["last_attempt_at"] is not None
            assert datetime.fromisoformat(step["next_attempt_at"]) > datetime.fromisoformat(
                step["last_attempt_at"]
            )
            retry = await api.post(f"/admin/orders/{order_id}/retry", headers=admin)
            assert retry.status_code == 409
            assert retry.json()["type"] in ("retry-not-possible", "nothing-to-retry")
    finally:
        await engine.dispose()
