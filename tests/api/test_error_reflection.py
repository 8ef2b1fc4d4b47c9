"""No error body reflects what the client sent, on any route of the app.

Every route is read from the app itself (as tests/api/test_access_control.py
does), and each is sent a marker in every place a client controls: each
path parameter, each query parameter, each body field (as text, as an
object, as a list of objects, and as an unknown key), form fields and the
headers the route reads. Whatever the answer, an error body must not carry
the marker back: not in ``detail``, not in a field name, not in a message.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from temporalio.client import Client

from api.main import create_app
from core.db import SessionFactory
from core.models import Role
from core.settings import Settings
from tests.api.test_access_control import Endpoint, _all_params, endpoints
from tests.support.e2e import api_client
from tests.support.factories import auth_header, create_user

# The letters are what must never come back; the angle brackets make the
# marker the kind of text that turns a reflected error into markup.
CORE = "zqx7reflect"
MARKER = f"<img src=x onerror={CORE}>"

ENDPOINTS = endpoints(create_app(Settings(_env_file=None)))


def _body_fields(endpoint: Endpoint) -> list[str]:
    field = endpoint.route.body_field
    if field is None:
        return []
    annotation = field.field_info.annotation
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _is_form(endpoint: Endpoint) -> bool:
    field = endpoint.route.body_field
    return field is not None and type(field.field_info).__name__ == "Form"


def _requests(endpoint: Endpoint) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what is probed, keyword arguments of httpx's request) for one route."""
    path_values = {name: str(uuid.uuid4()) for name in endpoint.path_parameters}
    url = endpoint.path.format(**path_values)
    for name in sorted(endpoint.path_parameters):
        yield f"path {name}", {"url": endpoint.path.format(**{**path_values, name: MARKER})}
    for name in sorted(endpoint.query_parameters):
        yield f"query {name}", {"url": url, "params": {name: MARKER}}
    yield "unknown query", {"url": url, "params": {MARKER: MARKER}}
    for header in sorted(p.alias for p in _all_params(endpoint.route.dependant, "header_params")):
        yield f"header {header}", {"url": url, "headers": {header: MARKER}}
    yield "Prefer", {"url": url, "headers": {"Prefer": f"wait={MARKER}"}}
    if endpoint.route.body_field is None:
        return
    if _is_form(endpoint):
        form = endpoint.route.body_field.field_info.annotation
        assert isinstance(form, type) and issubclass(form, BaseModel)
        names = [field.alias or name for name, field in form.model_fields.items()]
        yield "form fields", {"url": url, "data": dict.fromkeys(names, MARKER)}
        yield "form fields", {"url": url, "data": {MARKER: MARKER, "username": MARKER}}
        return
    fields = _body_fields(endpoint)
    yield "body as text", {"url": url, "json": dict.fromkeys(fields, MARKER)}
    yield "body as objects", {"url": url, "json": {f: {MARKER: MARKER} for f in fields}}
    yield "body as lists", {"url": url, "json": {f: [{MARKER: MARKER}] for f in fields}}
    yield "unknown body key", {"url": url, "json": {MARKER: MARKER}}
    yield "body not an object", {"url": url, "json": MARKER}
    yield (
        "body not JSON",
        {
            "url": url,
            "content": MARKER.encode(),
            "headers": {"content-type": "application/json"},
        },
    )


CASES = [
    pytest.param(endpoint, probe, kwargs, id=f"{endpoint.label} {probe}")
    for endpoint in ENDPOINTS
    for probe, kwargs in _requests(endpoint)
]


def test_every_route_is_probed() -> None:
    probed = {case.values[0].label for case in CASES}  # type: ignore[union-attr]
    assert probed == {endpoint.label for endpoint in ENDPOINTS}
    # The probes really reach the places the issue found echoing.
    labels = {case.id for case in CASES}
    assert "GET /orders/{order_id} path order_id" in labels
    assert "POST /products unknown body key" in labels


@pytest.fixture
async def api(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, task_queue: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    admin = await create_user(sessions, role=Role.ADMIN)
    app_settings = settings.model_copy(update={"task_queue": task_queue})
    async with api_client(app_settings, temporal_client) as client:
        yield client, auth_header(settings, admin)


@pytest.mark.parametrize(("endpoint", "probe", "kwargs"), CASES)
async def test_no_error_body_reflects_submitted_text(
    api: tuple[httpx.AsyncClient, dict[str, str]],
    endpoint: Endpoint,
    probe: str,
    kwargs: dict[str, Any],
) -> None:
    client, admin = api
    # An admin token gets past authorization, so the route's own checks run.
    request = dict(kwargs)
    headers = {**admin, **request.pop("headers", {})}
    response = await client.request(endpoint.method, headers=headers, **request)

    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert CORE not in response.text, response.text
