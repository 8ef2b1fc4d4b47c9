"""GET/PATCH /users/me, POST /users/me/password, roles and create_or_promote_admin."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from api.auth.accounts import WeakPassword, create_or_promote_admin
from core.db import SessionFactory
from core.models import Role, User
from core.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, auth_header, create_user

NEW_PASSWORD = "another-long-secret"


async def _login(api: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await api.post("/auth/login", json={"email": email, "password": password})


async def _bearer(
    api: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD
) -> dict[str, str]:
    response = await _login(api, email, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_me_is_the_callers_profile(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="me@example.com", name="Me")
    await create_user(sessions, email="someone-else@example.com")
    response = await api.get("/users/me", headers=auth_header(settings, user))
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.id),
        "email": "me@example.com",
        "name": "Me",
        "phone": None,
        "role": "customer",
        "notify_email": True,
        "notify_sms": False,
        "email_verified": False,
    }


async def test_me_needs_a_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "unauthorized"
    bad = await api.get("/users/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401


async def test_a_registered_account_logs_in_and_reads_itself(api: httpx.AsyncClient) -> None:
    body = {"email": "New@Example.com", "password": "pass-word-1", "name": "New"}
    registered = await api.post("/auth/register", json=body)
    assert registered.status_code == 201
    me = await api.get("/users/me", headers=await _bearer(api, "new@example.com", "pass-word-1"))
    assert me.json() == registered.json()


async def test_patch_changes_name_and_phone(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions)
    headers = auth_header(settings, user)
    response = await api.patch(
        "/users/me", json={"name": "Renamed", "phone": "+1 555 0100"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["phone"] == "+15550100"  # E.164, as SMS providers take it
    # Only what is sent changes; phone may be cleared.
    response = await api.patch("/users/me", json={"phone": None}, headers=headers)
    assert response.json()["name"] == "Renamed"
    assert response.json()["phone"] is None
    assert (await api.get("/users/me", headers=headers)).json() == response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "new@example.com"}, "email"),
        ({"role": "admin"}, "role"),
        ({"name": "Fine", "role": "admin"}, "role"),
        ({"token_version": 7}, "token_version"),
        ({"password": "new-password-1"}, "password"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone": "0711 082 123"}, "phone"),  # national form: which country?
        ({"phone": "+1 (555) 010-0000"}, "phone"),
        ({"notify_sms": None}, "notify_sms"),
        ({"notify_sms": "yes please"}, "notify_sms"),
    ],
)
async def test_patch_refuses_anything_else(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    settings: Settings,
    body: dict[str, object],
    field: str,
) -> None:
    user = await create_user(sessions, email="fixed@example.com", name="Fixed")
    response = await api.patch("/users/me", json=body, headers=auth_header(settings, user))
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}
    async with sessions() as session:
        stored = await session.get(User, user.id)
    assert stored is not None
    assert (stored.email, stored.name, stored.role, stored.token_version) == (
        "fixed@example.com",
        "Fixed",
        Role.CUSTOMER,
        0,
    )


async def test_password_change_revokes_older_tokens(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="rotate@example.com")
    headers, other_session = (
        await _bearer(api, "rotate@example.com"),
        await _bearer(api, "rotate@example.com"),
    )
    response = await api.post(
        "/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 204
    for old in (headers, other_session):
        refused = await api.get("/users/me", headers=old)
        assert refused.status_code == 401
        assert refused.json()["detail"] == "token has been revoked"
    assert (await _login(api, "rotate@example.com", DEFAULT_PASSWORD)).status_code == 401
    fresh = await _bearer(api, "rotate@example.com", NEW_PASSWORD)
    assert (await api.get("/users/me", headers=fresh)).status_code == 200


async def test_wrong_current_password_is_refused_clearly(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="wrong@example.com")
    headers = await _bearer(api, "wrong@example.com")
    response = await api.post(
        "/users/me/password",
        json={"current_password": "not-my-password", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "wrong-password"
    assert "not-my-password" not in response.text
    # Nothing changed: the token and the old password still work.
    assert (await api.get("/users/me", headers=headers)).status_code == 200
    assert (await _login(api, "wrong@example.com", DEFAULT_PASSWORD)).status_code == 200


@pytest.mark.parametrize("new_password", ["short", "weak@example.com", "WEAK@example.com"])
async def test_weak_new_password_is_422(
    api: httpx.AsyncClient, sessions: SessionFactory, new_password: str
) -> None:
    await create_user(sessions, email="weak@example.com")
    headers = await _bearer(api, "weak@example.com")
    response = await api.post(
        "/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
        headers=headers,
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"new_password"}
    assert new_password not in response.text
    assert (await api.get("/users/me", headers=headers)).status_code == 200


async def test_password_change_refuses_extra_fields(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions)
    response = await api.post(
        "/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD, "role": "admin"},
        headers=auth_header(settings, user),
    )
    assert response.status_code == 422
    assert (await api.post("/users/me/password", json={})).status_code == 401


# --- roles and admins -----------------------------------------------------


async def test_create_or_promote_admin_creates_an_admin_who_can_log_in(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    admin = await create_or_promote_admin(sessions, "Boss@Example.com", "boss-password")
    assert admin.role is Role.ADMIN
    assert admin.email == "boss@example.com"
    me = await api.get("/users/me", headers=await _bearer(api, "boss@example.com", "boss-password"))
    assert me.json()["role"] == "admin"


async def test_create_or_promote_admin_promotes_and_is_idempotent(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    customer = await create_user(sessions, email="rise@example.com")
    old_token = await _bearer(api, "rise@example.com")

    # Same password: promoted, tokens untouched.
    promoted = await create_or_promote_admin(sessions, "rise@example.com", DEFAULT_PASSWORD)
    assert promoted.id == customer.id and promoted.role is Role.ADMIN
    again = await create_or_promote_admin(sessions, "rise@example.com", DEFAULT_PASSWORD)
    assert again.token_version == promoted.token_version
    assert (await api.get("/users/me", headers=old_token)).status_code == 200

    # Another password: replaced, so older tokens stop working.
    await create_or_promote_admin(sessions, "rise@example.com", "replaced-password")
    assert (await api.get("/users/me", headers=old_token)).status_code == 401
    fresh = await _bearer(api, "rise@example.com", "replaced-password")
    assert (await api.get("/users/me", headers=fresh)).json()["role"] == "admin"
    async with sessions() as session:
        assert len((await session.scalars(select(User))).all()) == 1


async def test_create_or_promote_admin_refuses_weak_passwords(sessions: SessionFactory) -> None:
    with pytest.raises(WeakPassword):
        await create_or_promote_admin(sessions, "admin@example.com", "short")
    with pytest.raises(WeakPassword):
        await create_or_promote_admin(sessions, "admin@example.com", "ADMIN@example.com")
    async with sessions() as session:
        assert await session.scalar(select(User)) is None


async def test_notification_channels_default_to_email_and_change_by_patch(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions)
    headers = auth_header(settings, user)
    me = (await api.get("/users/me", headers=headers)).json()
    assert (me["notify_email"], me["notify_sms"]) == (True, False)

    response = await api.patch(
        "/users/me",
        json={"phone": "+254 711 082 123", "notify_sms": True, "notify_email": False},
        headers=headers,
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["phone"], body["notify_sms"], body["notify_email"]) == (
        "+254711082123",
        True,
        False,
    )
    async with sessions() as session:
        row = await session.get_one(User, user.id)
    assert (row.phone, row.notify_sms, row.notify_email) == ("+254711082123", True, False)


async def test_sms_without_a_phone_is_refused_and_nothing_is_kept(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions)
    headers = auth_header(settings, user)

    response = await api.patch(
        "/users/me", json={"notify_sms": True, "name": "Changed"}, headers=headers
    )

    assert response.status_code == 422
    assert response.json()["type"] == "validation-error"
    assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
        ("notify_sms", "phone_required")
    ]
    me = (await api.get("/users/me", headers=headers)).json()
    assert (me["notify_sms"], me["name"]) == (False, "Test User")

    # Nor may the phone go while SMS stays on.
    await api.patch("/users/me", json={"phone": "+15550100", "notify_sms": True}, headers=headers)
    cleared = await api.patch("/users/me", json={"phone": None}, headers=headers)
    assert cleared.status_code == 422
    assert (await api.get("/users/me", headers=headers)).json()["phone"] == "+15550100"
