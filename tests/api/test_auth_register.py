"""POST /auth/register: the account contract and its refusals."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from core.db import SessionFactory
from core.models import Role, User

PASSWORD = "a-long-enough-secret"


def _body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"}
    body.update(overrides)
    return body


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


async def test_register_creates_a_customer(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    response = await api.post("/auth/register", json=_body(phone="+44 20 7946 0000"))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "name",
        "phone",
        "role",
        "notify_email",
        "notify_sms",
        "email_verified",
    }
    assert body["email_verified"] is False
    assert body["email"] == "ada@example.com"
    assert body["name"] == "Ada"
    assert body["phone"] == "+442079460000"  # E.164
    assert body["role"] == "customer"
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == "ada@example.com"))
    assert user is not None and str(user.id) == body["id"]
    assert user.role is Role.CUSTOMER
    # argon2id, never the password itself.
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_phone_is_optional(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/register", json=_body())
    assert response.status_code == 201
    assert response.json()["phone"] is None


async def test_email_is_stored_lower_cased(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/register", json=_body(email="Ada.Lovelace@Example.COM"))
    assert response.status_code == 201
    assert response.json()["email"] == "ada.lovelace@example.com"


async def test_duplicate_email_is_409_whatever_its_case(api: httpx.AsyncClient) -> None:
    assert (await api.post("/auth/register", json=_body())).status_code == 201
    for email in ("ada@example.com", "ADA@Example.com"):
        response = await api.post("/auth/register", json=_body(email=email, name="Other"))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "email-taken"


@pytest.mark.parametrize(
    "password",
    ["short", "1234567", "ada@example.com", "ADA@EXAMPLE.COM"],
    ids=["short", "seven-chars", "equals-email", "equals-email-other-case"],
)
async def test_weak_password_is_422_naming_the_field(
    api: httpx.AsyncClient, sessions: SessionFactory, password: str
) -> None:
    response = await api.post("/auth/register", json=_body(password=password))
    assert response.status_code == 422
    assert _fields(response) == {"password"}
    assert password not in response.text
    async with sessions() as session:
        assert await session.scalar(select(User)) is None


async def test_eight_characters_are_enough(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/register", json=_body(password="12345678"))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("field", "named"),
    [("role", "role"), ("token_version", "token_version"), ("id", "id"), ("is_admin", "body")],
)
async def test_unknown_fields_are_refused(
    api: httpx.AsyncClient, sessions: SessionFactory, field: str, named: str
) -> None:
    response = await api.post("/auth/register", json=_body(**{field: "admin"}))
    assert response.status_code == 422
    # A name the app uses itself is named; any other key is the client's own
    # text, never sent back: the refusal is then on the body as a whole.
    assert named in _fields(response)
    assert "extra_forbidden" in {e["type"] for e in response.json()["errors"]}
    async with sessions() as session:
        assert await session.scalar(select(User)) is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"phone": "call me maybe"}, "phone"),
    ],
)
async def test_bad_fields_are_named(
    api: httpx.AsyncClient, overrides: dict[str, object], field: str
) -> None:
    response = await api.post("/auth/register", json=_body(**overrides))
    assert response.status_code == 422
    assert _fields(response) == {field}


async def test_missing_fields_are_named(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/register", json={})
    assert response.status_code == 422
    assert _fields(response) == {"email", "password", "name"}


async def test_passwords_never_reach_error_bodies_or_logs(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3r-secret-passphrase"
    caplog.set_level(logging.DEBUG)
    answers = [
        # refused for another field, with the password present
        await api.post("/auth/register", json=_body(email="bad", password=secret)),
        await api.post("/auth/register", json=_body(password=secret, role="admin")),
        # the password refused itself, in several ways
        await api.post("/auth/register", json=_body(password=secret[:5])),
        await api.post("/auth/register", json=_body(password=secret * 100)),
        await api.post("/auth/register", json=_body(password=12345678)),
        # a wrong login
        await api.post("/auth/login", json={"email": "nobody@example.com", "password": secret}),
        await api.post("/auth/token", data={"username": "nobody@example.com", "password": secret}),
    ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 422, 401, 401]
    for answer in answers:
        assert secret[:5] not in answer.text
    assert secret[:5] not in caplog.text
