"""The orders REST contract, on the real dev server with no worker polling.

Without a worker every saga stays at its start, which is exactly what these
tests need: they check what the API writes and starts (rows, the workflow and
its search attributes) and how it refuses bad input, never the saga's
outcome (tests/e2e/test_e2e_checkout.py does that with the real worker).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client, WorkflowExecutionStatus

from core.db import SessionFactory
from core.models import (
    CaughtMail,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    Role,
    User,
)
from core.settings import Settings
from tests.support import order_factory
from tests.support.e2e import api_client, checkout, count_orders, order_body, set_status
from tests.support.factories import auth_header, create_product, create_user
from worker.main import build_worker
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import workflow_id

# --- fixtures --------------------------------------------------------------


@pytest.fixture
def queue_settings(settings: Settings, task_queue: str) -> Settings:
    return settings.model_copy(update={"task_queue": task_queue})


@pytest.fixture
async def orders_api(
    queue_settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(queue_settings, temporal_client) as client:
        yield client


@pytest.fixture
async def customer(sessions: SessionFactory) -> User:
    return await create_user(sessions, email="ada@example.com", name="Ada")


@pytest.fixture
def headers(settings: Settings, customer: User) -> dict[str, str]:
    return auth_header(settings, customer)


@pytest.fixture
async def admin_headers(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    admin = await create_user(sessions, role=Role.ADMIN)
    return auth_header(settings, admin)


@pytest.fixture
async def other_headers(settings: Settings, sessions: SessionFactory) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions))


def _fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


# --- POST /orders: what a good checkout writes and starts ------------------


async def test_checkout_prices_from_the_catalog_and_writes_the_order_once(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    customer: User,
) -> None:
    pen = await create_product(sessions, price=1250, stock=5)
    ink = await create_product(sessions, price=399, stock=5)

    response = await checkout(orders_api, headers, order_body((pen, 2), (ink, 3)))

    assert response.status_code == 202, response.text
    order = response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["status"] == "pending"
    assert order["total"] == 2 * 1250 + 3 * 399
    assert order["currency"] == "USD"
    assert [(i["sku"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        (pen.sku, 2, 1250),
        (ink.sku, 3, 399),
    ]
    assert order["payment"] == {"status": "pending", "amount": 3697, "refunded_amount": 0}
    assert order["shipping_address"]["city"] == "London"
    assert order["failure_reason"] is None
    assert "tok_visa" not in response.text
    # Answered from what was written, not read back: the read model agrees
    # (no worker here, so the order is still as written).
    read_back = await orders_api.get(response.headers["Location"], headers=headers)
    assert read_back.json() == order

    async with sessions() as session:
        row = await session.get_one(Order, uuid.UUID(order["id"]))
        assert row.customer_id == customer.id
        assert row.status is OrderStatus.PENDING
        assert len(row.request_fingerprint) == 64
        items = list(await session.scalars(select(OrderItem).order_by(OrderItem.position)))
        assert [(i.product_id, i.unit_price, i.position) for i in items] == [
            (pen.id, 1250, 0),
            (ink.id, 399, 1),
        ]
        payment = await session.get_one(Payment, row.id)
        assert (payment.provider, payment.status) == ("simulator", PaymentStatus.PENDING)
        assert (payment.amount, payment.currency) == (3697, "USD")
        events = list(await session.scalars(select(OrderEvent.type)))
        assert events == ["order.placed"]


async def test_checkout_starts_one_workflow_with_search_attributes_and_summary(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    customer: User,
    temporal_client: Client,
    task_queue: str,
) -> None:
    product = await create_product(sessions, price=1250)
    order = (await checkout(orders_api, headers, order_body((product, 2)))).json()

    handle = temporal_client.get_workflow_handle(workflow_id(order["id"]))
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert description.task_queue == task_queue
    assert description.workflow_type == "OrderWorkflow"
    attributes = description.typed_search_attributes
    assert attributes.get(search_attributes.ORDER_STATUS) == "pending"
    assert attributes.get(search_attributes.CUSTOMER_ID) == str(customer.id)
    assert attributes.get(search_attributes.ORDER_TOTAL) == pytest.approx(25.0)
    assert attributes.get(search_attributes.NEEDS_ATTENTION) is False
    summary = await description.static_summary()
    assert summary is not None
    assert "ada@example.com" in summary and "USD 25.00" in summary
    # The card token never travels to Temporal.
    history = await handle.fetch_history()
    assert "tok_visa" not in history.to_json()


async def test_prefer_wait_answers_202_when_the_saga_has_not_settled(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    # No worker polls this task queue: the wait runs out with the saga unstarted.
    product = await create_product(sessions)
    response = await checkout(orders_api, headers, order_body((product, 1)), wait=1)
    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "wait=1"
    assert response.json()["status"] == "pending"
    # The saga was started all the same, once: a worker that comes up runs it.
    handle = temporal_client.get_workflow_handle(workflow_id(response.json()["id"]))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


class _HeldMailer:
    """A mailer that holds every message until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> None:
        self.holding.set()
        await self.release.wait()


async def test_prefer_wait_answers_once_the_saga_passes_its_pivot(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    temporal_client: Client,
    queue_settings: Settings,
) -> None:
    # The answer comes from the saga (update-with-start), not from the
    # workflow's end: the confirmation mail is still held when it arrives.
    mailer = _HeldMailer()
    product = await create_product(sessions, stock=5)
    worker = build_worker(temporal_client, queue_settings, sessions, mailer=mailer)
    async with worker:
        try:
            await _pivot_then_failure(orders_api, headers, temporal_client, product, mailer)
        finally:
            mailer.release.set()  # else the worker's shutdown waits for the mail


async def _pivot_then_failure(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    temporal_client: Client,
    product: Product,
    mailer: _HeldMailer,
) -> None:
    response = await checkout(orders_api, headers, order_body((product, 2)), wait=30)
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    # The answer after the wait is the order as it now is, lines included.
    now = await orders_api.get(response.headers["Location"], headers=headers)
    assert response.json() == now.json()
    assert [i["quantity"] for i in response.json()["items"]] == [2]
    handle = temporal_client.get_workflow_handle(workflow_id(response.json()["id"]))
    assert (await handle.query(OrderWorkflow.state)).status == "confirmed"
    await mailer.holding.wait()  # answered while the confirmation mail is still held
    # A declined card settles the order before the pivot: answered the same way.
    declined = order_body((product, 1), token="tok_chargeDeclined")
    failed = await checkout(orders_api, headers, declined, wait=30)
    assert failed.status_code == 200
    assert failed.json()["status"] == "payment_failed"


@pytest.mark.parametrize("prefer", ["wait=31", "wait=-1", "wait=abc", "wait=1.5", "wait="])
async def test_a_bad_prefer_wait_is_refused_before_anything_is_written(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    prefer: str,
) -> None:
    product = await create_product(sessions)
    response = await orders_api.post(
        "/orders",
        json=order_body((product, 1)),
        headers={**headers, "Idempotency-Key": "k1", "Prefer": prefer},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "invalid-prefer"
    assert await count_orders(sessions) == 0


async def test_other_preferences_are_ignored(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    response = await orders_api.post(
        "/orders",
        json=order_body((product, 1)),
        headers={**headers, "Idempotency-Key": "k1", "Prefer": "respond-async, return=minimal"},
    )
    assert response.status_code == 202
    assert "Preference-Applied" not in response.headers


# --- POST /orders: refusals -------------------------------------------------


async def test_checkout_needs_a_token(
    orders_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    response = await checkout(orders_api, {}, order_body((product, 1)))
    assert response.status_code == 401
    assert await count_orders(sessions) == 0


@pytest.mark.parametrize(
    "key",
    [None, "", "   ", "k" * 256, "caf\u00e9", "line\nbreak"],
    ids=["missing", "empty", "blank", "too-long", "non-ascii", "control-char"],
)
async def test_checkout_needs_a_sane_idempotency_key(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    key: str | None,
) -> None:
    product = await create_product(sessions)
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    if key is not None:
        raw.append((b"idempotency-key", key.encode("utf-8")))
    response = await orders_api.post("/orders", json=order_body((product, 1)), headers=raw)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "idempotency-key"
    assert await count_orders(sessions) == 0


async def test_an_idempotency_key_of_255_characters_is_accepted(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    response = await checkout(orders_api, headers, order_body((product, 1)), key="k" * 255)
    assert response.status_code == 202


def _mutations() -> list[tuple[str, Any, set[str]]]:
    """(name, change to a valid body, fields the 422 must name)."""

    def items(*lines: dict[str, Any]) -> Any:
        return lambda body: {**body, "items": list(lines)}

    pid = "{pid}"
    return [
        ("no-items", items(), {"items"}),
        ("quantity-0", items({"product_id": pid, "quantity": 0}), {"items[0].quantity"}),
        ("quantity-101", items({"product_id": pid, "quantity": 101}), {"items[0].quantity"}),
        ("quantity-string", items({"product_id": pid, "quantity": "2"}), {"items[0].quantity"}),
        ("quantity-float", items({"product_id": pid, "quantity": 1.5}), {"items[0].quantity"}),
        ("bad-product-id", items({"product_id": "abc", "quantity": 1}), {"items[0].product_id"}),
        (
            "client-price",
            items({"product_id": pid, "quantity": 1, "unit_price": 1}),
            {"items[0].unit_price"},
        ),
        ("client-total", lambda b: {**b, "total": 1}, {"total"}),
        ("client-status", lambda b: {**b, "status": "confirmed"}, {"status"}),
        ("client-user", lambda b: {**b, "customer_id": str(uuid.uuid4())}, {"customer_id"}),
        ("client-currency", lambda b: {**b, "currency": "EUR"}, {"currency"}),
        ("no-payment", lambda b: {k: v for k, v in b.items() if k != "payment"}, {"payment"}),
        ("no-token", lambda b: {**b, "payment": {}}, {"payment.token"}),
        (
            # A key the app does not use is the client's own text: the
            # refusal names its parent, never the key.
            "card-number",
            lambda b: {**b, "payment": {"token": "tok_visa", "card_number": "4242"}},
            {"payment"},
        ),
        (
            "no-city",
            lambda b: {
                **b,
                "shipping_address": {k: v for k, v in b["shipping_address"].items() if k != "city"},
            },
            {"shipping_address.city"},
        ),
        (
            "address-extra",
            lambda b: {**b, "shipping_address": {**b["shipping_address"], "price": 1}},
            {"shipping_address.price"},
        ),
    ]


@pytest.mark.parametrize(
    ("change", "fields"), [(m[1], m[2]) for m in _mutations()], ids=[m[0] for m in _mutations()]
)
async def test_invalid_checkouts_are_422_naming_the_field_and_start_nothing(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    change: Any,
    fields: set[str],
) -> None:
    product = await create_product(sessions)
    body = change(order_body((product, 1)))
    for item in body.get("items", []):
        if item.get("product_id") == "{pid}":
            item["product_id"] = str(product.id)
    response = await checkout(orders_api, headers, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fields <= _fields(response)
    assert await count_orders(sessions) == 0


async def test_more_than_50_lines_is_refused(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    body = order_body(*[(uuid.uuid4(), 1) for _ in range(51)])
    response = await checkout(orders_api, headers, body)
    assert response.status_code == 422
    assert "items" in _fields(response)
    assert await count_orders(sessions) == 0


async def test_duplicate_product_lines_are_refused(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    response = await checkout(orders_api, headers, order_body((product, 1), (product, 2)))
    assert response.status_code == 422
    assert response.json()["type"] == "validation-error"
    assert _fields(response) == {"items"}
    assert await count_orders(sessions) == 0


async def test_unknown_and_inactive_products_are_named(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    good = await create_product(sessions)
    gone = await create_product(sessions, active=False)
    response = await checkout(
        orders_api, headers, order_body((good, 1), (uuid.uuid4(), 1), (gone, 1))
    )
    assert response.status_code == 422
    assert _fields(response) == {"items[1].product_id", "items[2].product_id"}
    messages = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert messages["items[1].product_id"] == "unknown product"
    assert messages["items[2].product_id"] == "product is not for sale"
    assert await count_orders(sessions) == 0


async def test_mixed_currencies_are_refused(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    dollars = await create_product(sessions, currency="USD")
    euros = await create_product(sessions, currency="EUR")
    response = await checkout(orders_api, headers, order_body((dollars, 1), (euros, 1)))
    assert response.status_code == 422
    assert response.json()["type"] == "invalid-order"
    assert _fields(response) == {"items"}
    assert await count_orders(sessions) == 0


async def test_a_refusal_never_echoes_the_card_token(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    body = order_body((uuid.uuid4(), 1), token="tok_secretish_value")
    response = await checkout(orders_api, headers, body)
    assert response.status_code == 422
    assert "tok_secretish_value" not in response.text


async def test_checkout_without_temporal_is_503_with_retry_after(
    api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    # The conftest `api` app has no Temporal connection.
    product = await create_product(sessions)
    response = await checkout(api, headers, order_body((product, 1)))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert await count_orders(sessions) == 0


# --- idempotency --------------------------------------------------------------


async def test_same_key_and_body_returns_the_same_order_and_workflow(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    product = await create_product(sessions)
    body = order_body((product, 2))
    first = await checkout(orders_api, headers, body, key="retry-me")
    handle = temporal_client.get_workflow_handle(workflow_id(first.json()["id"]))
    run_id = (await handle.describe()).run_id

    # Key order and whitespace do not matter: the fingerprint is canonical.
    reordered = {k: body[k] for k in reversed(list(body))}
    second = await checkout(orders_api, headers, reordered, key="retry-me")

    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await count_orders(sessions) == 1
    assert (await handle.describe()).run_id == run_id
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_same_key_with_another_body_is_409(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    await checkout(orders_api, headers, order_body((product, 1)), key="once")
    response = await checkout(orders_api, headers, order_body((product, 2)), key="once")
    assert response.status_code == 409
    assert response.json()["type"] == "idempotency-key-reused"
    assert await count_orders(sessions) == 1


async def test_keys_belong_to_one_customer(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    product = await create_product(sessions)
    mine = await checkout(orders_api, headers, order_body((product, 1)), key="shared")
    theirs = await checkout(orders_api, other_headers, order_body((product, 1)), key="shared")
    assert theirs.status_code == 202
    assert theirs.json()["id"] != mine.json()["id"]
    assert await count_orders(sessions) == 2


async def test_concurrent_retries_with_one_key_make_one_order(
    orders_api: httpx.AsyncClient, headers: dict[str, str], sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    body = order_body((product, 1))
    responses = await asyncio.gather(
        *(checkout(orders_api, headers, body, key="racing") for _ in range(6))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_orders(sessions) == 1


async def test_a_retry_starts_the_workflow_the_first_attempt_could_not(
    queue_settings: Settings,
    sessions: SessionFactory,
    headers: dict[str, str],
    temporal_client: Client,
) -> None:
    # A real client that cannot start workflows (its namespace does not
    # exist): the first attempt writes the rows, then fails to start the saga.
    broken_client = await Client.connect(
        temporal_client.service_client.config.target_host,
        namespace=f"missing-{uuid.uuid4().hex[:8]}",
    )
    product = await create_product(sessions)
    body = order_body((product, 1))

    async with api_client(queue_settings, broken_client) as broken:
        first = await checkout(broken, headers, body, key="flaky-network")
    assert first.status_code == 503
    assert first.headers["Retry-After"]
    assert await count_orders(sessions) == 1  # the rows were written

    async with api_client(queue_settings, temporal_client) as healthy:
        second = await checkout(healthy, headers, body, key="flaky-network")
    assert second.status_code == 202
    order_id = second.json()["id"]
    description = await temporal_client.get_workflow_handle(workflow_id(order_id)).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert await count_orders(sessions) == 1


# --- reading orders -----------------------------------------------------------


async def test_get_order_for_owner_and_admin_only(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    product = await create_product(sessions, price=700)
    order = (await checkout(orders_api, headers, order_body((product, 3)))).json()

    mine = await orders_api.get(f"/orders/{order['id']}", headers=headers)
    assert mine.status_code == 200
    body = mine.json()
    assert {
        "id",
        "status",
        "items",
        "total",
        "currency",
        "shipping_address",
        "payment",
        "failure_reason",
        "created_at",
        "updated_at",
    } <= set(body)
    assert body["items"][0] == {
        "product_id": str(product.id),
        "sku": product.sku,
        "name": product.name,
        "quantity": 3,
        "unit_price": 700,
    }
    assert body["payment"] == {"status": "pending", "amount": 2100, "refunded_amount": 0}

    assert (
        await orders_api.get(f"/orders/{order['id']}", headers=admin_headers)
    ).status_code == 200
    theirs = await orders_api.get(f"/orders/{order['id']}", headers=other_headers)
    assert theirs.status_code == 404
    missing = await orders_api.get(f"/orders/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    assert theirs.json()["type"] == missing.json()["type"]  # indistinguishable
    assert (await orders_api.get("/orders/not-an-id", headers=headers)).status_code == 404
    assert (await orders_api.get(f"/orders/{order['id']}")).status_code == 401


async def test_list_orders_is_mine_newest_first_and_paginated(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    customer: User,
    sessions: SessionFactory,
) -> None:
    made = [(await order_factory.create_order(sessions, customer=customer)).id for _ in range(5)]
    await order_factory.create_order(sessions)  # someone else's

    first = await orders_api.get("/orders", params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    assert first.json()["total"] == 5
    rest = await orders_api.get("/orders", params={"limit": 100, "offset": 2}, headers=headers)
    ids = [o["id"] for o in first.json()["items"] + rest.json()["items"]]
    assert ids == [str(i) for i in reversed(made)]
    assert first.json()["items"][0]["payment"]["status"] == "pending"
    assert (
        await orders_api.get("/orders", params={"limit": 0}, headers=headers)
    ).status_code == 422


async def test_admins_see_all_orders_and_filter_them(
    orders_api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    alice = await create_user(sessions)
    bob = await create_user(sessions)
    a1 = await order_factory.create_order(sessions, customer=alice)
    a2 = await order_factory.create_order(sessions, customer=alice)
    b1 = await order_factory.create_order(sessions, customer=bob)
    await set_status(sessions, a2.id, OrderStatus.CONFIRMED)
    await set_status(sessions, b1.id, OrderStatus.CONFIRMED)

    async def ids(**params: str) -> set[str]:
        response = await orders_api.get("/orders", params=params, headers=admin_headers)
        assert response.status_code == 200
        assert response.json()["total"] == len(response.json()["items"])
        return {o["id"] for o in response.json()["items"]}

    assert await ids() == {str(a1.id), str(a2.id), str(b1.id)}
    assert await ids(status="confirmed") == {str(a2.id), str(b1.id)}
    assert await ids(customer_id=str(alice.id)) == {str(a1.id), str(a2.id)}
    assert await ids(customer_id=str(alice.id), status="confirmed") == {str(a2.id)}
    bad = await orders_api.get("/orders", params={"status": "lost"}, headers=admin_headers)
    assert bad.status_code == 422
    assert "status" in _fields(bad)


async def test_customers_cannot_list_other_customers_orders(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    customer: User,
    sessions: SessionFactory,
) -> None:
    other = await create_user(sessions)
    await order_factory.create_order(sessions, customer=other)
    mine = await order_factory.create_order(sessions, customer=customer)

    response = await orders_api.get(
        "/orders", params={"customer_id": str(other.id)}, headers=headers
    )
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0}
    own = await orders_api.get("/orders", params={"customer_id": str(customer.id)}, headers=headers)
    assert [o["id"] for o in own.json()["items"]] == [str(mine.id)]


async def test_timeline_lists_events_in_order_for_the_owner_only(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    product = await create_product(sessions)
    order = (await checkout(orders_api, headers, order_body((product, 1)))).json()
    async with sessions() as session, session.begin():
        for kind in ("stock.reserved", "payment.captured"):
            session.add(OrderEvent(order_id=uuid.UUID(order["id"]), type=kind, detail=kind))

    response = await orders_api.get(f"/orders/{order['id']}/timeline", headers=headers)
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["type"] for e in events] == ["order.placed", "stock.reserved", "payment.captured"]
    assert set(events[0]) == {"at", "type", "detail"}
    theirs = await orders_api.get(f"/orders/{order['id']}/timeline", headers=other_headers)
    assert theirs.status_code == 404


# --- cancel / ship / deliver refusals -----------------------------------------


@pytest.mark.parametrize(
    "status",
    [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.PAYMENT_FAILED, OrderStatus.REJECTED],
)
async def test_cancel_is_409_from_a_state_that_cannot_be_cancelled(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    customer: User,
    sessions: SessionFactory,
    status: OrderStatus,
) -> None:
    order = await order_factory.create_order(sessions, customer=customer)
    await set_status(sessions, order.id, status)
    response = await orders_api.post(f"/orders/{order.id}/cancel", json={}, headers=headers)
    assert response.status_code == 409
    assert response.json()["order_status"] == status.value


async def test_cancel_after_the_workflow_finished_is_409(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    # The read model still says pending, but the saga is gone: Temporal
    # answers NOT_FOUND, which must be a conflict, never a 500.
    product = await create_product(sessions)
    order = (await checkout(orders_api, headers, order_body((product, 1)))).json()
    await temporal_client.get_workflow_handle(workflow_id(order["id"])).terminate("test")

    response = await orders_api.post(f"/orders/{order['id']}/cancel", headers=headers)
    assert response.status_code == 409
    assert response.json()["type"] == "order-state-conflict"
    assert response.json()["order_status"] == "pending"  # what the client can see


async def test_ship_and_deliver_are_for_admins(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    customer: User,
    sessions: SessionFactory,
) -> None:
    order = await order_factory.create_order(sessions, customer=customer)
    await set_status(sessions, order.id, OrderStatus.CONFIRMED)
    for action in ("ship", "deliver"):
        response = await orders_api.post(f"/orders/{order.id}/{action}", headers=headers)
        assert response.status_code == 403
    async with sessions() as session:
        assert (await session.get_one(Order, order.id)).status is OrderStatus.CONFIRMED


async def test_others_cannot_cancel_and_unknown_orders_are_404(
    orders_api: httpx.AsyncClient,
    other_headers: dict[str, str],
    admin_headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    order = await order_factory.create_order(sessions)
    response = await orders_api.post(f"/orders/{order.id}/cancel", headers=other_headers)
    assert response.status_code == 404
    for action in ("ship", "deliver", "cancel"):
        response = await orders_api.post(f"/orders/{uuid.uuid4()}/{action}", headers=admin_headers)
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (OrderStatus.CANCELLED, "ship"),
        (OrderStatus.DELIVERED, "ship"),
        (OrderStatus.SHIPPED, "ship"),
        (OrderStatus.PAYMENT_FAILED, "deliver"),
        (OrderStatus.DELIVERED, "deliver"),
    ],
)
async def test_ship_and_deliver_are_409_from_the_wrong_state(
    orders_api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    sessions: SessionFactory,
    status: OrderStatus,
    action: str,
) -> None:
    order = await order_factory.create_order(sessions)
    await set_status(sessions, order.id, status)
    response = await orders_api.post(f"/orders/{order.id}/{action}", headers=admin_headers)
    assert response.status_code == 409


async def test_change_bodies_refuse_unknown_fields(
    orders_api: httpx.AsyncClient,
    headers: dict[str, str],
    admin_headers: dict[str, str],
    customer: User,
    sessions: SessionFactory,
) -> None:
    order = await order_factory.create_order(sessions, customer=customer)
    cancel = await orders_api.post(
        f"/orders/{order.id}/cancel", json={"reason": "x", "refund": 1}, headers=headers
    )
    assert cancel.status_code == 422
    # "refund" is no name of the app's, so it is not sent back: the body is refused.
    assert {"body"} == _fields(cancel)
    assert [e["type"] for e in cancel.json()["errors"]] == ["extra_forbidden"]
    ship = await orders_api.post(
        f"/orders/{order.id}/ship", json={"status": "delivered"}, headers=admin_headers
    )
    assert ship.status_code == 422
    assert "status" in _fields(ship)


# --- admin mail -----------------------------------------------------------------


async def test_admin_reads_caught_mail_newest_first(
    orders_api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    async with sessions() as session, session.begin():
        for n in range(3):
            session.add(
                CaughtMail(
                    mail_from="orders@ordersaga.dev",
                    rcpt_to="ada@example.com",
                    subject=f"mail {n}",
                    body=f"body {n}",
                    received_at=func.now() + timedelta(seconds=n),
                )
            )
    response = await orders_api.get("/admin/mail", params={"limit": 2}, headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["total"] == 3
    assert [m["subject"] for m in response.json()["items"]] == ["mail 2", "mail 1"]
    assert (await orders_api.get("/admin/mail", headers=headers)).status_code == 403
    assert (await orders_api.get("/admin/mail")).status_code == 401


def test_the_update_accept_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERSAGA_UPDATE_ACCEPT_TIMEOUT_SECONDS", "1.5")
    assert Settings(_env_file=None).update_accept_timeout_seconds == 1.5  # type: ignore[call-arg]
    monkeypatch.delenv("ORDERSAGA_UPDATE_ACCEPT_TIMEOUT_SECONDS")
    assert Settings(_env_file=None).update_accept_timeout_seconds == 10.0  # type: ignore[call-arg]


async def test_cancel_with_no_worker_to_accept_it_is_503(
    queue_settings: Settings,
    temporal_client: Client,
    headers: dict[str, str],
    sessions: SessionFactory,
) -> None:
    # No worker polls this test's queue, so nobody can accept the update:
    # after the accept timeout (short here, so the case is fast) the client
    # is told to retry, not left hanging.
    short = queue_settings.model_copy(update={"update_accept_timeout_seconds": 1.0})
    async with api_client(short, temporal_client) as orders_api:
        product = await create_product(sessions)
        order = (await checkout(orders_api, headers, order_body((product, 1)))).json()
        response = await orders_api.post(f"/orders/{order['id']}/cancel", headers=headers)
    assert response.status_code == 503
    assert response.json()["type"] == "temporal-unavailable"
    assert response.headers["Retry-After"]
