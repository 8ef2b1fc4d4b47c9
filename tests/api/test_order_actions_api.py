"""Cancel, ship and deliver over HTTP answer by the ``Prefer: wait`` rules of checkout.

200 with the settled order if the change finished within the wait, else 202
with the order as it is now; ``Preference-Applied`` echoes the wait. Real
API, worker, Temporal dev server and payment simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client

from core.db import SessionFactory
from core.models import Role
from core.settings import Settings
from tests.support.e2e import api_with_worker, checkout, order_body
from tests.support.factories import auth_header, create_product, create_user

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def queue_settings(settings: Settings, task_queue: str) -> Settings:
    # A provider timeout of 1 s: a hanging charge attempt ends quickly.
    return settings.model_copy(
        update={"task_queue": task_queue, "payment_provider_timeout_seconds": 1.0}
    )


@pytest.fixture
async def orders_api(
    queue_settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_with_worker(queue_settings, sessions, temporal_client) as client:
        yield client


async def _status_becomes(
    api: httpx.AsyncClient, order_id: str, headers: dict[str, str], status: str
) -> bool:
    for _ in range(300):  # bounded: 30 s
        if (await api.get(f"/orders/{order_id}", headers=headers)).json()["status"] == status:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_cancel_not_settled_within_the_wait_is_202_with_the_current_state(
    orders_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = auth_header(settings, await create_user(sessions))
    admin = auth_header(settings, await create_user(sessions, role=Role.ADMIN))
    product = await create_product(sessions, stock=3)
    # tok_timeout: the charge hangs, so the cancel cannot settle at once.
    order = await checkout(orders_api, headers, order_body((product, 1), token="tok_timeout"))
    order_id = order.json()["id"]
    # A refusal is known at once: 409 even with no time to wait.
    early_ship = await orders_api.post(
        f"/orders/{order_id}/ship", headers={**admin, "Prefer": "wait=0"}
    )
    assert early_ship.status_code == 409, early_ship.text

    response = await orders_api.post(
        f"/orders/{order_id}/cancel",
        json={"reason": "changed my mind"},
        headers={**headers, "Prefer": "wait=0"},
    )

    assert response.status_code == 202, response.text
    assert response.headers["Preference-Applied"] == "wait=0"
    assert response.json()["status"] == "pending"
    # Accepted all the same: the saga settles it on its own.
    assert await _status_becomes(orders_api, order_id, headers, "cancelled")
    again = await orders_api.post(f"/orders/{order_id}/cancel", headers=headers)
    assert again.status_code == 409


async def test_ship_and_deliver_settled_within_the_wait_are_200(
    orders_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = auth_header(settings, await create_user(sessions))
    admin = auth_header(settings, await create_user(sessions, role=Role.ADMIN))
    product = await create_product(sessions, stock=3)
    placed = await checkout(orders_api, headers, order_body((product, 1)), wait=30)
    assert placed.json()["status"] == "confirmed"
    order_id = placed.json()["id"]

    for action, status in (("ship", "shipped"), ("deliver", "delivered")):
        response = await orders_api.post(
            f"/orders/{order_id}/{action}", headers={**admin, "Prefer": "wait=30"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["Preference-Applied"] == "wait=30"
        assert response.json()["status"] == status


async def test_a_bad_prefer_wait_on_a_change_is_400(
    orders_api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory
) -> None:
    headers = auth_header(settings, await create_user(sessions))
    product = await create_product(sessions, stock=3)
    placed = await checkout(orders_api, headers, order_body((product, 1)), wait=30)

    response = await orders_api.post(
        f"/orders/{placed.json()['id']}/cancel", headers={**headers, "Prefer": "wait=99"}
    )

    assert response.status_code == 400
    assert response.json()["type"] == "invalid-prefer"
    confirmed = await orders_api.get(f"/orders/{placed.json()['id']}", headers=headers)
    assert confirmed.json()["status"] == "confirmed"
