"""Object-level authorization, checked on every route the app has.

The routes are read from the app itself at test time, so a route added
later is covered (or makes these tests fail until it is): every route that
takes an order or user id answers a second customer 404, exactly like a
missing order, and leaves every row as it was; every admin route answers a
customer 403; every route that needs a token answers 401 without one.

Token attacks (forged, expired, revoked...) are in tests/api/test_auth_tokens.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import BaseRoute
from temporalio.client import Client

from api.deps import current_principal, require_admin
from api.main import create_app
from core.db import SessionFactory
from core.models import (
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Product,
    Role,
    StockMovement,
    User,
)
from core.settings import Settings
from tests.support import order_factory
from tests.support.e2e import api_client
from tests.support.factories import auth_header, create_product, create_user

# Parameters that name someone's order or account.
OWNED_PATH_PARAMETERS = {"order_id", "user_id", "customer_id"}
OWNED_QUERY_PARAMETERS = {"customer_id", "user_id"}
# What every path parameter of the app is filled with (see World).
KNOWN_PATH_PARAMETERS = OWNED_PATH_PARAMETERS | {"product_id"}
# Tables whose rows a refused request must leave exactly as they were.
GUARDED = [Order, OrderItem, Payment, OrderEvent, Product, StockMovement, User]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: APIRoute

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_parameters(self) -> set[str]:
        return {p.name for p in _all_params(self.route.dependant, "path_params")}

    @property
    def query_parameters(self) -> set[str]:
        return {p.name for p in _all_params(self.route.dependant, "query_params")}

    @property
    def takes_owned_id(self) -> bool:
        return bool(self.path_parameters & OWNED_PATH_PARAMETERS)

    @property
    def admin_only(self) -> bool:
        return _depends_on(self.route.dependant, require_admin)

    @property
    def needs_token(self) -> bool:
        # Routes where a token is optional (catalog reads) verify one that is
        # sent without depending on current_principal, and are not listed.
        return _depends_on(self.route.dependant, current_principal)


def _all_params(dependant: Dependant, attribute: str) -> list[Any]:
    found = list(getattr(dependant, attribute))
    for sub in dependant.dependencies:
        found += _all_params(sub, attribute)
    return found


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return dependant.call is call or any(_depends_on(d, call) for d in dependant.dependencies)


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI includes routers lazily: the app holds a wrapper per router.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def endpoints(app: FastAPI) -> list[Endpoint]:
    found = {
        (method, route.path): route for route in _api_routes(app.routes) for method in route.methods
    }
    # The OpenAPI document is the public list of operations: each one must be
    # found above, so no route can hide from these tests (not even if
    # FastAPI changes how it keeps included routers).
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= set(found), f"routes not found: {documented - set(found)}"
    return sorted(
        (Endpoint(method, path, found[method, path]) for method, path in documented),
        key=lambda e: e.label,
    )


@pytest.fixture(scope="module")
def app_endpoints() -> list[Endpoint]:
    return endpoints(create_app(Settings(_env_file=None)))  # type: ignore[call-arg]


def test_the_route_table_is_what_these_tests_know(app_endpoints: list[Endpoint]) -> None:
    """A route with a path parameter nobody taught these tests fails here."""
    unknown = {
        (e.label, name) for e in app_endpoints for name in e.path_parameters - KNOWN_PATH_PARAMETERS
    }
    assert not unknown, f"teach World.path_values these parameters: {unknown}"
    # The enumeration really finds the routes this file is about.
    owned = {e.label for e in app_endpoints if e.takes_owned_id}
    assert {
        "GET /orders/{order_id}",
        "GET /orders/{order_id}/timeline",
        "POST /orders/{order_id}/cancel",
        "POST /orders/{order_id}/ship",
        "POST /orders/{order_id}/deliver",
    } <= owned
    assert {"GET /admin/mail", "POST /products", "DELETE /products/{product_id}"} <= {
        e.label for e in app_endpoints if e.admin_only
    }


# --- the world: an owner with an order, an intruder, an admin ----------------


@dataclass
class World:
    api: httpx.AsyncClient
    sessions: SessionFactory
    owner: User
    owner_headers: dict[str, str]
    intruder_headers: dict[str, str]
    admin_headers: dict[str, str]
    order: Order
    product: Product

    def path_values(self) -> dict[str, str]:
        return {
            "order_id": str(self.order.id),
            "user_id": str(self.owner.id),
            "customer_id": str(self.owner.id),
            "product_id": str(self.product.id),
        }

    def url(self, endpoint: Endpoint) -> str:
        return endpoint.path.format(**self.path_values())

    async def call(self, endpoint: Endpoint, headers: dict[str, str]) -> httpx.Response:
        # Every body these routes take is valid as {} (all fields optional)
        # or is refused before it is read; the point is who may call, not what.
        body = {} if endpoint.route.body_field is not None else None
        return await self.api.request(
            endpoint.method, self.url(endpoint), json=body, headers=headers
        )


@pytest.fixture
async def world(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, task_queue: str
) -> AsyncIterator[World]:
    owner = await create_user(sessions, email="owner@example.com")
    intruder = await create_user(sessions, email="intruder@example.com")
    admin = await create_user(sessions, role=Role.ADMIN)
    product = await create_product(sessions, price=1250, stock=10)
    order = await order_factory.create_order(sessions, customer=owner, lines=[(product, 2)])
    app_settings = settings.model_copy(update={"task_queue": task_queue})
    async with api_client(app_settings, temporal_client) as api:
        yield World(
            api,
            sessions,
            owner,
            auth_header(settings, owner),
            auth_header(settings, intruder),
            auth_header(settings, admin),
            order,
            product,
        )


async def snapshot(sessions: SessionFactory) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every guarded row, to compare before and after."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as session:
        for model in GUARDED:
            columns = list(model.__table__.columns)
            rows = (await session.execute(select(*columns))).all()
            state[model.__tablename__] = sorted((tuple(r) for r in rows), key=repr)
    return state


def _assert_problem(response: httpx.Response, status: int, label: str) -> dict[str, Any]:
    assert response.status_code == status, f"{label}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", label
    body: dict[str, Any] = response.json()
    assert body["status"] == status, label
    return body


# --- another customer's order or account: 404, and nothing changes ------------


async def test_another_customers_ids_are_404_and_change_nothing(
    world: World, app_endpoints: list[Endpoint]
) -> None:
    targets = [e for e in app_endpoints if e.takes_owned_id]
    assert targets
    before = await snapshot(world.sessions)
    missing = await world.api.get(f"/orders/{uuid.uuid4()}", headers=world.intruder_headers)

    for endpoint in targets:
        response = await world.call(endpoint, world.intruder_headers)
        if endpoint.admin_only:
            # The role is checked first: a customer learns nothing about the id.
            _assert_problem(response, 403, endpoint.label)
            continue
        body = _assert_problem(response, 404, endpoint.label)
        # Indistinguishable from an order that does not exist.
        assert body["type"] == missing.json()["type"], endpoint.label
        for secret in (
            world.order.shipping_address["line1"],
            world.owner.email,
            str(world.owner.id),
            '"total"',
        ):
            assert secret not in response.text, (endpoint.label, secret)

    assert await snapshot(world.sessions) == before


async def test_the_owner_and_an_admin_do_reach_those_routes(
    world: World, app_endpoints: list[Endpoint]
) -> None:
    # The control for the test above: the same ids are real, so the
    # intruder's 404 comes from the ownership check, not from a bad id.
    for endpoint in (e for e in app_endpoints if e.takes_owned_id):
        who = world.admin_headers if endpoint.admin_only else world.owner_headers
        response = await world.call(endpoint, who)
        # Reads answer 200; changes reach the saga, which has no workflow
        # for this database-only order and refuses with 409.
        assert response.status_code in (200, 409), (endpoint.label, response.text)


async def test_a_customer_filter_on_someone_else_shows_nothing(
    world: World, app_endpoints: list[Endpoint]
) -> None:
    filtered = [e for e in app_endpoints if e.query_parameters & OWNED_QUERY_PARAMETERS]
    assert filtered
    for endpoint in filtered:
        params = {
            name: str(world.owner.id) for name in endpoint.query_parameters & OWNED_QUERY_PARAMETERS
        }
        path = world.url(endpoint)
        theirs = await world.api.get(path, params=params, headers=world.intruder_headers)
        assert theirs.status_code == 200, endpoint.label
        assert theirs.json() == {"items": [], "total": 0}, endpoint.label
        assert str(world.order.id) not in theirs.text
        # An admin's filter does find the order, so the filter itself works.
        admin_view = await world.api.get(path, params=params, headers=world.admin_headers)
        assert [o["id"] for o in admin_view.json()["items"]] == [str(world.order.id)]


# --- admin routes: 403 for customers, and nothing changes ---------------------


async def test_customers_get_403_from_every_admin_route(
    world: World, app_endpoints: list[Endpoint]
) -> None:
    admin_routes = [e for e in app_endpoints if e.admin_only]
    before = await snapshot(world.sessions)
    for endpoint in admin_routes:
        # Even the owner of the order: ship and deliver are not theirs to call.
        for headers in (world.owner_headers, world.intruder_headers):
            body = _assert_problem(await world.call(endpoint, headers), 403, endpoint.label)
            assert body["type"] == "forbidden"
    assert await snapshot(world.sessions) == before


# --- no token: 401 on every route that needs one ------------------------------


async def test_every_route_that_needs_a_token_is_401_without_one(
    world: World, app_endpoints: list[Endpoint]
) -> None:
    secured = [e for e in app_endpoints if e.needs_token]
    assert {"POST /orders", "GET /orders", "GET /admin/mail", "GET /users/me"} <= {
        e.label for e in secured
    }
    before = await snapshot(world.sessions)
    for endpoint in secured:
        response = await world.call(endpoint, {})
        _assert_problem(response, 401, endpoint.label)
        assert response.headers["www-authenticate"].startswith("Bearer"), endpoint.label
    assert await snapshot(world.sessions) == before
