"""The catalog contract: GET /products, GET/POST/PATCH/DELETE /products/{id}."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from core.db import SessionFactory
from core.models import Product, Role, StockMovement
from core.settings import Settings
from tests.support.factories import auth_header, create_product, create_user
from tests.support.polling import poll_until

PRODUCT_KEYS = {
    "id",
    "sku",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "stock",
    "active",
    "image_url",
}


@pytest.fixture
async def admin(sessions: SessionFactory, settings: Settings) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


@pytest.fixture
async def customer(sessions: SessionFactory, settings: Settings) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.CUSTOMER))


def new_product(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": f"NEW-{uuid.uuid4().hex[:8].upper()}",
        "name": "Espresso Cup",
        "description": "Double-walled glass, 80 ml",
        "category": "home",
        "price": 1250,
        "currency": "USD",
        "stock": 7,
    }
    body.update(overrides)
    return body


def failing_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {error["field"] for error in response.json()["errors"]}


async def insert_products(sessions: SessionFactory, count: int, **fields: Any) -> None:
    async with sessions() as session, session.begin():
        session.add_all(
            Product(
                sku=f"BULK-{i:04d}-{uuid.uuid4().hex[:6]}",
                name=f"Bulk item {i:04d}",
                description="",
                category=fields.get("category", "bulk"),
                price=100 + i,
                currency="USD",
                stock=fields.get("stock", 1),
                active=fields.get("active", True),
            )
            for i in range(count)
        )


async def movements(sessions: SessionFactory, product_id: uuid.UUID) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(StockMovement.kind, StockMovement.delta)
            .where(StockMovement.product_id == product_id)
            .order_by(StockMovement.id)
        )
        return [(kind.value, delta) for kind, delta in rows]


# --- listing --------------------------------------------------------------


async def test_list_is_items_and_total_with_the_product_shape(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions, price=1999, stock=4)

    response = await api.get("/products")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "total"}
    assert body["total"] == 1
    assert body["items"] == [
        {
            "id": str(product.id),
            "sku": product.sku,
            "name": "Test product",
            "description": "",
            "category": "test",
            "price": 1999,
            "currency": "USD",
            "stock": 4,
            "active": True,
            "image_url": None,
        }
    ]
    assert isinstance(body["items"][0]["price"], int)


async def test_limit_defaults_to_20(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    await insert_products(sessions, 25)

    body = (await api.get("/products")).json()

    assert len(body["items"]) == 20
    assert body["total"] == 25


async def test_limit_is_capped_at_100(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    await insert_products(sessions, 105)

    body = (await api.get("/products", params={"limit": 1000})).json()
    huge = await api.get("/products", params={"limit": 10**30})

    assert len(body["items"]) == 100
    assert body["total"] == 105
    assert huge.status_code == 200
    assert len(huge.json()["items"]) == 100


async def test_pages_are_ordered_by_name_and_do_not_overlap(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await insert_products(sessions, 7)

    first = (await api.get("/products", params={"limit": 3, "offset": 0})).json()
    second = (await api.get("/products", params={"limit": 3, "offset": 3})).json()
    last = (await api.get("/products", params={"limit": 3, "offset": 6})).json()
    beyond = (await api.get("/products", params={"limit": 3, "offset": 50})).json()

    names = [p["name"] for page in (first, second, last) for p in page["items"]]
    assert names == sorted(names) == [f"Bulk item {i:04d}" for i in range(7)]
    assert beyond == {"items": [], "total": 7}


async def test_equal_names_still_have_a_stable_order(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    # Every factory product is called "Test product": the id breaks the tie.
    ids = sorted([str((await create_product(sessions)).id) for _ in range(4)])

    pages = [
        (await api.get("/products", params={"limit": 1, "offset": i})).json()["items"][0]["id"]
        for i in range(4)
    ]
    assert pages == ids


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 1.5}, "offset"),
        ({"offset": 2**64}, "offset"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "nul\x00byte"}, "q"),
        ({"category": ""}, "category"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_parameter(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/products", params=params)

    assert failing_fields(response) == {field}
    assert response.json()["errors"][0]["in"] == "query"


async def test_q_searches_name_sku_and_description_case_insensitively(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    for body in (
        new_product(sku="MUG-RED", name="Red Mug", description="stoneware"),
        new_product(sku="KETTLE-1", name="Kettle", description="boils water for a MUG of tea"),
        new_product(sku="CUP-MUGGY", name="Cup", description="glass"),
        new_product(sku="LAMP-1", name="Lamp", description="light"),
    ):
        assert (await api.post("/products", json=body, headers=admin)).status_code == 201

    body = (await api.get("/products", params={"q": "mUg"})).json()

    assert sorted(p["sku"] for p in body["items"]) == ["CUP-MUGGY", "KETTLE-1", "MUG-RED"]
    assert body["total"] == 3


async def test_q_matches_wildcard_characters_literally(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("100% cotton shirt", "1000 cotton buds", "snake_case mug", "snakeXcase mug"):
        assert (await api.post("/products", json=new_product(name=name), headers=admin)).is_success

    percent = (await api.get("/products", params={"q": "100%"})).json()
    underscore = (await api.get("/products", params={"q": "snake_"})).json()

    assert [p["name"] for p in percent["items"]] == ["100% cotton shirt"]
    assert [p["name"] for p in underscore["items"]] == ["snake_case mug"]


async def test_category_filter_is_exact_and_case_insensitive(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await insert_products(sessions, 2, category="Books")
    await insert_products(sessions, 3, category="books-used")
    await insert_products(sessions, 1, category="home")

    body = (await api.get("/products", params={"category": "BOOKS"})).json()

    assert body["total"] == 2
    assert {p["category"] for p in body["items"]} == {"Books"}


async def test_in_stock_filter(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    available = await create_product(sessions, stock=3)
    sold_out = await create_product(sessions, stock=0)

    in_stock = (await api.get("/products", params={"in_stock": "true"})).json()
    out_of_stock = (await api.get("/products", params={"in_stock": "false"})).json()
    everything = (await api.get("/products")).json()

    assert [p["id"] for p in in_stock["items"]] == [str(available.id)]
    assert [p["id"] for p in out_of_stock["items"]] == [str(sold_out.id)]
    assert everything["total"] == 2


async def test_filters_combine(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for body in (
        new_product(name="Blue mug", category="home", stock=2),
        new_product(name="Blue mug sold out", category="home", stock=0),
        new_product(name="Blue mug book", category="books", stock=2),
    ):
        assert (await api.post("/products", json=body, headers=admin)).status_code == 201

    body = (
        await api.get("/products", params={"q": "blue", "category": "home", "in_stock": "true"})
    ).json()

    assert [p["name"] for p in body["items"]] == ["Blue mug"]
    assert body["total"] == 1


async def test_inactive_products_are_hidden_from_anonymous_and_customers(
    api: httpx.AsyncClient, sessions: SessionFactory, customer: dict[str, str]
) -> None:
    active = await create_product(sessions)
    await create_product(sessions, active=False)

    for headers in ({}, customer):
        body = (await api.get("/products", headers=headers)).json()
        assert [p["id"] for p in body["items"]] == [str(active.id)]
        assert body["total"] == 1
        # The active filter can only narrow what a customer may see.
        assert (await api.get("/products", params={"active": "false"}, headers=headers)).json() == {
            "items": [],
            "total": 0,
        }


async def test_admins_see_inactive_products_and_can_filter_on_active(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    active = await create_product(sessions)
    inactive = await create_product(sessions, active=False)

    everything = (await api.get("/products", headers=admin)).json()
    only_inactive = (await api.get("/products", params={"active": "false"}, headers=admin)).json()
    only_active = (await api.get("/products", params={"active": "true"}, headers=admin)).json()

    assert everything["total"] == 2
    assert {p["id"] for p in everything["items"]} == {str(active.id), str(inactive.id)}
    assert [(p["id"], p["active"]) for p in only_inactive["items"]] == [(str(inactive.id), False)]
    assert [p["id"] for p in only_active["items"]] == [str(active.id)]


async def test_an_invalid_token_on_a_public_read_is_401_not_anonymous(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    product = await create_product(sessions)
    bad = {"Authorization": "Bearer not-a-jwt"}

    for path in ("/products", f"/products/{product.id}"):
        response = await api.get(path, headers=bad)
        assert response.status_code == 401
        assert response.json()["type"] == "unauthorized"


# --- one product ------------------------------------------------------------


async def test_get_product_by_id(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    product = await create_product(sessions, price=500, currency="EUR")

    response = await api.get(f"/products/{product.id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PRODUCT_KEYS
    assert (body["id"], body["sku"], body["price"], body["currency"]) == (
        str(product.id),
        product.sku,
        500,
        "EUR",
    )


async def test_unknown_product_is_404_problem(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/products/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert body["type"] == "product-not-found"


async def test_malformed_product_id_is_422_naming_the_id_without_echoing_it(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/products/not-a-uuid-zz")

    assert failing_fields(response) == {"product_id"}
    assert response.json()["errors"][0]["in"] == "path"
    assert "not-a-uuid-zz" not in response.text


async def test_a_withdrawn_product_is_404_except_to_admins(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    customer: dict[str, str],
    admin: dict[str, str],
) -> None:
    product = await create_product(sessions, active=False)

    anonymous = await api.get(f"/products/{product.id}")
    as_customer = await api.get(f"/products/{product.id}", headers=customer)
    as_admin = await api.get(f"/products/{product.id}", headers=admin)

    assert (anonymous.status_code, as_customer.status_code) == (404, 404)
    assert as_customer.json() == anonymous.json()  # indistinguishable from "never existed"
    assert as_admin.status_code == 200
    assert as_admin.json()["active"] is False


# --- create -----------------------------------------------------------------


async def test_admin_creates_a_product_with_location_and_initial_stock(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    body = new_product(stock=7, price=1250)

    response = await api.post("/products", json=body, headers=admin)

    assert response.status_code == 201
    created = response.json()
    assert set(created) == PRODUCT_KEYS
    assert {k: created[k] for k in body} == body
    assert created["active"] is True
    assert response.headers["location"] == f"/products/{created['id']}"
    fetched = await api.get(response.headers["location"])
    assert fetched.json() == created
    assert await movements(sessions, uuid.UUID(created["id"])) == [("initial", 7)]


async def test_create_fills_optional_fields(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = new_product()
    del body["description"], body["stock"]

    created = (await api.post("/products", json=body, headers=admin)).json()

    assert (created["description"], created["stock"], created["active"]) == ("", 0, True)


async def test_admin_may_create_an_inactive_product(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await api.post("/products", json=new_product(active=False), headers=admin)

    assert created.status_code == 201
    assert created.json()["active"] is False
    assert (await api.get("/products")).json()["total"] == 0


async def test_duplicate_sku_is_409(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    existing = await create_product(sessions, sku="DUP-1")

    response = await api.post("/products", json=new_product(sku="DUP-1"), headers=admin)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "duplicate-sku"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 1
        assert await session.scalar(select(func.count()).select_from(StockMovement)) == 1
    assert (await api.get(f"/products/{existing.id}")).json()["name"] == "Test product"


async def test_concurrent_creates_of_one_sku_give_one_201_and_one_409(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    body = new_product(sku="RACE-1")

    responses = await asyncio.gather(
        api.post("/products", json=body, headers=admin),
        api.post("/products", json=body, headers=admin),
    )

    assert sorted(r.status_code for r in responses) == [201, 409]


async def test_create_needs_a_token(api: httpx.AsyncClient, sessions: SessionFactory) -> None:
    response = await api.post("/products", json=new_product())

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    await assert_no_products(sessions)


async def test_customers_cannot_create_products(
    api: httpx.AsyncClient, sessions: SessionFactory, customer: dict[str, str]
) -> None:
    response = await api.post("/products", json=new_product(), headers=customer)

    assert response.status_code == 403
    assert response.json()["type"] == "forbidden"
    await assert_no_products(sessions)


async def assert_no_products(sessions: SessionFactory) -> None:
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price": 19.99}, "price"),
        ({"price": 1999.0}, "price"),
        ({"price": "1999"}, "price"),
        ({"price": -1}, "price"),
        ({"price": 10**15}, "price"),
        ({"price": True}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"stock": "5"}, "stock"),
        ({"stock": 2**40}, "stock"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"currency": 840}, "currency"),
        ({"sku": ""}, "sku"),
        ({"sku": "has spaces"}, "sku"),
        ({"sku": "S" * 65}, "sku"),
        ({"name": "   "}, "name"),
        ({"name": "N" * 201}, "name"),
        ({"name": "nul\x00name"}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"category": ""}, "category"),
        ({"active": "yes please"}, "active"),
        ({"active": 1}, "active"),
        ({"active": "true"}, "active"),
        ({"role": "admin"}, "role"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_bad_product_bodies_are_422_naming_the_field(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    admin: dict[str, str],
    overrides: dict[str, Any],
    field: str,
) -> None:
    response = await api.post("/products", json=new_product(**overrides), headers=admin)

    assert failing_fields(response) == {field}
    await assert_no_products(sessions)


async def test_missing_fields_are_all_named(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await api.post("/products", json={"description": "only this"}, headers=admin)

    assert failing_fields(response) == {"sku", "name", "category", "price", "currency"}


@pytest.mark.parametrize("body", [[], "text", 42, None])
async def test_a_body_that_is_not_an_object_is_422(
    api: httpx.AsyncClient, admin: dict[str, str], body: Any
) -> None:
    response = await api.post("/products", json=body, headers=admin)

    assert response.status_code == 422
    assert response.json()["type"] == "validation-error"


# --- update -----------------------------------------------------------------


async def test_admin_patches_some_fields_and_keeps_the_rest(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    product = await create_product(sessions, price=1000, stock=5)

    response = await api.patch(
        f"/products/{product.id}",
        json={"name": "Renamed", "description": "new words", "category": "misc", "price": 1200},
        headers=admin,
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"], body["category"], body["price"]) == (
        "Renamed",
        "new words",
        "misc",
        1200,
    )
    assert (body["sku"], body["currency"], body["stock"], body["active"]) == (
        product.sku,
        "USD",
        5,
        True,
    )
    assert (await api.get(f"/products/{product.id}")).json() == body
    # No stock change, so no ledger entry beyond the initial one.
    assert await movements(sessions, product.id) == [("initial", 5)]


async def test_stock_changes_are_written_to_the_ledger_as_restocks(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    product = await create_product(sessions, stock=10)

    for stock in (25, 4, 4, 0):
        response = await api.patch(f"/products/{product.id}", json={"stock": stock}, headers=admin)
        assert response.status_code == 200
        assert response.json()["stock"] == stock

    assert await movements(sessions, product.id) == [
        ("initial", 10),
        ("restock", 15),
        ("restock", -21),
        ("restock", -4),
    ]
    async with sessions() as session:
        ledger = await session.scalar(
            select(func.sum(StockMovement.delta)).where(StockMovement.product_id == product.id)
        )
    assert ledger == 0


async def test_a_restock_waits_for_a_concurrent_reservation(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    engine: Any,
    admin: dict[str, str],
) -> None:
    # A reservation holds the row; the PATCH must see its result, or the
    # RESTOCK delta (new - old) would be computed from a stale stock.
    product = await create_product(sessions, stock=10)
    async with engine.connect() as reserving:
        txn = await reserving.begin()
        await reserving.execute(
            text("UPDATE products SET stock = stock - 3 WHERE id = :id"), {"id": product.id}
        )
        await reserving.execute(
            text(
                "INSERT INTO stock_movements (product_id, kind, delta) VALUES (:id, 'reserve', -3)"
            ),
            {"id": product.id},
        )
        patch = asyncio.create_task(
            api.patch(f"/products/{product.id}", json={"stock": 20}, headers=admin)
        )
        await wait_for_a_lock_wait(sessions)
        assert not patch.done()
        await txn.commit()
    response = await patch

    assert response.status_code == 200
    assert await movements(sessions, product.id) == [
        ("initial", 10),
        ("reserve", -3),
        ("restock", 13),
    ]
    async with sessions() as session:
        assert (await session.get(Product, product.id)).stock == 20  # type: ignore[union-attr]


async def wait_for_a_lock_wait(sessions: SessionFactory) -> None:
    # Synchronisation, not a timing assertion: poll until PostgreSQL reports
    # a backend waiting on a row lock.

    async def waiting() -> bool:
        async with sessions() as session:
            count = await session.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
        return bool(count)

    await poll_until(waiting, "the PATCH waiting for the row lock", interval=0.01)


async def test_patch_can_reactivate_a_product(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    product = await create_product(sessions, active=False)

    response = await api.patch(f"/products/{product.id}", json={"active": True}, headers=admin)

    assert response.json()["active"] is True
    assert (await api.get("/products")).json()["total"] == 1


async def test_an_empty_patch_changes_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    product = await create_product(sessions)
    before = (await api.get(f"/products/{product.id}")).json()

    response = await api.patch(f"/products/{product.id}", json={}, headers=admin)

    assert response.status_code == 200
    assert response.json() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "NEW-SKU"}, "sku"),
        ({"currency": "EUR"}, "currency"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"price": 12.5}, "price"),
        ({"price": -100}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": "many"}, "stock"),
        ({"stock": None}, "stock"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": " \t "}, "name"),
        ({"category": "a\x00b"}, "category"),
        ({"description": "\x00"}, "description"),
        ({"active": None}, "active"),
    ],
)
async def test_bad_patches_are_422_and_change_nothing(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    admin: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    product = await create_product(sessions, price=1000, stock=5)

    response = await api.patch(f"/products/{product.id}", json=body, headers=admin)

    assert failing_fields(response) == {field}
    stored = (await api.get(f"/products/{product.id}")).json()
    assert (stored["sku"], stored["price"], stored["stock"], stored["name"]) == (
        product.sku,
        1000,
        5,
        "Test product",
    )
    assert await movements(sessions, product.id) == [("initial", 5)]


async def test_patch_of_an_unknown_product_is_404(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.patch(f"/products/{uuid.uuid4()}", json={"price": 1}, headers=admin)

    assert response.status_code == 404
    assert response.json()["type"] == "product-not-found"


async def test_patch_needs_an_admin(
    api: httpx.AsyncClient, sessions: SessionFactory, customer: dict[str, str]
) -> None:
    product = await create_product(sessions, price=1000)

    anonymous = await api.patch(f"/products/{product.id}", json={"price": 1})
    as_customer = await api.patch(f"/products/{product.id}", json={"price": 1}, headers=customer)

    assert (anonymous.status_code, as_customer.status_code) == (401, 403)
    assert (await api.get(f"/products/{product.id}")).json()["price"] == 1000


# --- delete (deactivate) ----------------------------------------------------


async def test_delete_deactivates_and_keeps_the_row(
    api: httpx.AsyncClient, sessions: SessionFactory, admin: dict[str, str]
) -> None:
    product = await create_product(sessions, stock=6)

    response = await api.delete(f"/products/{product.id}", headers=admin)

    assert response.status_code == 204
    assert response.content == b""
    async with sessions() as session:
        stored = await session.get(Product, product.id)
    assert stored is not None and (stored.active, stored.stock) == (False, 6)
    assert (await api.get("/products")).json() == {"items": [], "total": 0}
    assert (await api.get(f"/products/{product.id}")).status_code == 404
    assert (await api.get(f"/products/{product.id}", headers=admin)).json()["active"] is False
    # Deleting again is harmless.
    assert (await api.delete(f"/products/{product.id}", headers=admin)).status_code == 204


async def test_delete_of_an_unknown_product_is_404(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.delete(f"/products/{uuid.uuid4()}", headers=admin)

    assert response.status_code == 404


async def test_delete_needs_an_admin(
    api: httpx.AsyncClient, sessions: SessionFactory, customer: dict[str, str]
) -> None:
    product = await create_product(sessions)

    anonymous = await api.delete(f"/products/{product.id}")
    as_customer = await api.delete(f"/products/{product.id}", headers=customer)

    assert (anonymous.status_code, as_customer.status_code) == (401, 403)
    async with sessions() as session:
        assert (await session.get(Product, product.id)).active is True  # type: ignore[union-attr]
