"""Cross-cutting HTTP behaviour: one problem shape, body limit, OpenAPI truth."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from pydantic import BaseModel, field_validator

from api.app import build_app
from api.main import create_app
from core.db import SessionFactory
from core.models import Role
from core.settings import Settings
from tests.support.factories import auth_header, create_user

PROBLEM_KEYS = {"type", "title", "status", "detail"}
ONE_MIB = 1024 * 1024
SECRET = "s3cr3t-tok_visa-hunter2"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture
async def admin(sessions: SessionFactory, settings: Settings) -> dict[str, str]:
    return auth_header(settings, await create_user(sessions, role=Role.ADMIN))


# --- one shape ----------------------------------------------------------------


async def test_unknown_route_is_a_404_problem_that_does_not_echo_the_path(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get(f"/no-such-thing/{SECRET}")

    body = assert_problem(response, 404)
    assert body["title"] == "Not Found"
    assert SECRET not in response.text


async def test_wrong_method_is_a_405_problem_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.put("/products", json={})

    assert_problem(response, 405)
    # Every method the path serves, not only the first route's.
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_405_on_an_item_path_lists_all_its_methods(api: httpx.AsyncClient) -> None:
    response = await api.put("/products/00000000-0000-0000-0000-000000000000", json={})

    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


async def test_validation_problem_names_field_and_location(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post(
        "/products",
        json={"sku": "OK-1", "name": "x", "category": "c", "price": 1.5, "currency": "USD"},
        headers=admin,
    )

    body = assert_problem(response, 422)
    assert body["type"] == "validation-error"
    assert body["errors"] == [
        {
            "field": "price",
            "in": "body",
            "type": "int_type",
            "message": body["errors"][0]["message"],
        }
    ]
    assert "price" in body["detail"]


async def test_invalid_json_is_a_422_on_the_body(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post(
        "/products",
        content=b'{"sku": "A", "name": ' + SECRET.encode(),
        headers={**admin, "content-type": "application/json"},
    )

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "body", "in": "body", "type": "json_invalid", "message": "body is not valid JSON"}
    ]
    assert SECRET not in response.text


async def test_a_body_that_is_not_utf8_is_a_422_on_the_body(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post(
        "/products",
        content=b'{"sku": "\xff\xfe"}',
        headers={**admin, "content-type": "application/json"},
    )

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "body", "in": "body", "type": "json_invalid", "message": "body is not valid JSON"}
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"price": SECRET},
        {"currency": SECRET},
        {"sku": SECRET + " with spaces"},
        {"role": SECRET},
        {"stock": [SECRET]},
        {"name": SECRET * 20},
    ],
)
async def test_error_bodies_never_echo_submitted_values(
    api: httpx.AsyncClient, admin: dict[str, str], bad: dict[str, Any]
) -> None:
    body = {"sku": "OK-1", "name": "n", "category": "c", "price": 1, "currency": "USD"}
    body.update(bad)

    response = await api.post("/products", json=body, headers=admin)

    assert_problem(response, 422)
    assert SECRET not in response.text


async def test_a_malformed_bearer_token_is_not_echoed(api: httpx.AsyncClient) -> None:
    response = await api.post("/products", json={}, headers={"Authorization": f"Bearer {SECRET}"})

    assert_problem(response, 401)
    assert SECRET not in response.text


async def test_an_unhandled_error_is_a_500_problem_without_internals(
    settings: Settings, sessions: SessionFactory
) -> None:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database password is {SECRET}")

    app = build_app(title="t", settings=settings, routers=[router], use_temporal=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/boom")

    body = assert_problem(response, 500)
    assert body["type"] == "internal-error"
    assert SECRET not in response.text


class Stamp(BaseModel):
    at: str

    @field_validator("at")
    @classmethod
    def _iso(cls, at: str) -> str:
        # datetime's own ValueError quotes what it was given.
        datetime.fromisoformat(at)
        return at


async def test_a_library_message_quoting_the_input_is_not_sent(
    settings: Settings, sessions: SessionFactory
) -> None:
    # A validator that lets a library's message through must not turn the 422
    # into a mirror.
    router = APIRouter()

    @router.post("/stamp")
    async def stamp(body: Stamp) -> None:
        return None

    app = build_app(title="t", settings=settings, routers=[router], use_temporal=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/stamp", json={"at": SECRET})

    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "at"
    assert body["errors"][0]["type"] == "value_error"
    assert SECRET not in response.text


# --- body limit ---------------------------------------------------------------


async def test_declared_oversized_body_is_413(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await api.post(
        "/products",
        content=b"x" * (ONE_MIB + 1),
        headers={**admin, "content-type": "application/json"},
    )

    body = assert_problem(response, 413)
    assert body["type"] == "body-too-large"


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = min(size, total - sent)
        sent += chunk
        yield b" " * chunk


@pytest.mark.parametrize("authenticated", [True, False])
async def test_streamed_oversized_body_without_length_is_413(
    api: httpx.AsyncClient, admin: dict[str, str], authenticated: bool
) -> None:
    request = api.build_request(
        "POST",
        "/products",
        content=_chunks(2 * ONE_MIB),
        headers={**(admin if authenticated else {}), "content-type": "application/json"},
    )
    assert "content-length" not in request.headers  # really streamed

    response = await api.send(request)

    body = assert_problem(response, 413)
    assert body["type"] == "body-too-large"


async def test_a_body_just_under_the_limit_is_read(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Padding whitespace keeps it valid JSON: the limit, not the parser, is under test.
    payload = json.dumps({"sku": "BIG-1"}).encode()
    payload = payload[:-1] + b" " * (ONE_MIB - len(payload)) + b"}"
    assert len(payload) == ONE_MIB

    response = await api.post(
        "/products", content=payload, headers={**admin, "content-type": "application/json"}
    )

    # Read and validated: it fails on the missing fields, not on its size.
    assert_problem(response, 422)


# --- OpenAPI tells the truth about errors ---------------------------------------


@pytest.fixture
def openapi(settings: Settings) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_documented_error_is_problem_json(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (
                    method,
                    path,
                    status,
                )
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_every_422_is_documented_as_a_validation_problem(openapi: dict[str, Any]) -> None:
    documented = 0
    for _, _, operation in _operations(openapi):
        if "422" in operation["responses"]:
            documented += 1
            content = operation["responses"]["422"]["content"]["application/problem+json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ValidationProblem"}
    assert documented > 0
    fields = openapi["components"]["schemas"]["FieldProblem"]["properties"]
    assert set(fields) == {"field", "in", "type", "message"}


def test_secured_operations_document_401_and_bodies_document_413(
    openapi: dict[str, Any],
) -> None:
    for method, path, operation in _operations(openapi):
        if operation.get("security"):
            assert "401" in operation["responses"], (method, path)
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/products", {"200", "401", "422"}),
        ("post", "/products", {"201", "401", "403", "409", "413", "422"}),
        ("get", "/products/{product_id}", {"200", "401", "404", "422"}),
        ("patch", "/products/{product_id}", {"200", "401", "403", "404", "413", "422"}),
        ("delete", "/products/{product_id}", {"204", "401", "403", "404", "422"}),
    ],
)
def test_catalog_operations_document_their_statuses(
    openapi: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert set(openapi["paths"][path][method]["responses"]) == statuses


def test_catalog_reads_accept_but_do_not_require_a_token(openapi: dict[str, Any]) -> None:
    for path in ("/products", "/products/{product_id}"):
        assert {} in openapi["paths"][path]["get"]["security"]
    assert {} not in openapi["paths"]["/products"]["post"]["security"]


def test_patch_fields_are_documented_as_not_nullable(openapi: dict[str, Any]) -> None:
    # null is refused on the wire (422), so the document must not offer it.
    properties = openapi["components"]["schemas"]["ProductUpdate"]["properties"]
    assert set(properties) == {"name", "description", "category", "price", "stock", "active"}
    for name, prop in properties.items():
        assert "anyOf" not in prop and prop.get("type") != "null", name
    assert properties["price"]["type"] == "integer"
