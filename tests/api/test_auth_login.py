"""POST /auth/token, /auth/login and /auth/logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import SessionFactory
from core.models import RevokedToken, Role
from core.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, create_user


async def _token(api: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD) -> str:
    response = await api.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_password_form_issues_a_bearer_token(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="form@example.com")
    response = await api.post(
        "/auth/token", data={"username": "form@example.com", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    me = await api.get("/users/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)


async def test_json_login_issues_a_token_with_every_claim(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="json@example.com", role=Role.ADMIN)
    response = await api.post(
        "/auth/login", json={"email": "json@example.com", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    jwks = (await api.get("/.well-known/jwks.json")).json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"sub", "role", "ver", "iat", "nbf", "exp", "iss", "aud", "jti"} <= set(claims)
    assert claims["sub"] == str(user.id)
    assert claims["role"] == "admin"
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds


async def test_email_matches_whatever_its_case(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="case@example.com")
    await _token(api, " Case@EXAMPLE.com ")


async def test_each_login_gets_its_own_token(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="twice@example.com")
    first, second = await _token(api, "twice@example.com"), await _token(api, "twice@example.com")
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


async def test_unknown_email_and_wrong_password_answer_the_same(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="known@example.com")
    wrong = await api.post(
        "/auth/login", json={"email": "known@example.com", "password": "not-the-password"}
    )
    unknown = await api.post(
        "/auth/login", json={"email": "unknown@example.com", "password": "not-the-password"}
    )
    form_wrong = await api.post(
        "/auth/token", data={"username": "known@example.com", "password": "not-the-password"}
    )
    form_unknown = await api.post(
        "/auth/token", data={"username": "unknown@example.com", "password": "not-the-password"}
    )
    for answer in (wrong, unknown, form_wrong, form_unknown):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json() == wrong.json()
        assert answer.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")
    assert wrong.json()["type"] == "invalid-credentials"


async def test_unknown_email_costs_the_same_argon2_work(
    api: httpx.AsyncClient, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing is not asserted (no timed assertions); the work is: one argon2
    # verify with our parameters, whether or not the account exists.
    await create_user(sessions, email="known@example.com")
    real_verify = PasswordHasher.verify
    seen: list[str] = []

    def spy(self: PasswordHasher, password_hash: str | bytes, password: str | bytes) -> bool:
        seen.append(str(password_hash).split("$")[3])  # the parameters: m=..,t=..,p=..
        return real_verify(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    for email in ("unknown@example.com", "known@example.com"):
        response = await api.post("/auth/login", json={"email": email, "password": "wrong-one!"})
        assert response.status_code == 401
    assert len(seen) == 2
    assert seen[0] == PasswordHasher().hash("x").split("$")[3]


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/auth/login", {"json": {"email": "a@example.com"}}),
        ("/auth/login", {"json": {"email": "a@example.com", "password": "x", "role": "admin"}}),
        ("/auth/token", {"data": {"username": "a@example.com"}}),
    ],
)
async def test_malformed_login_bodies_are_422(
    api: httpx.AsyncClient, path: str, kwargs: dict[str, object]
) -> None:
    response = await api.post(path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert response.json()["type"] == "validation-error"


async def test_logout_revokes_that_token_only(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    await create_user(sessions, email="out@example.com")
    token, other = await _token(api, "out@example.com"), await _token(api, "out@example.com")
    assert (await api.get("/users/me", headers=_bearer(token))).status_code == 200

    response = await api.post("/auth/logout", headers=_bearer(token))
    assert response.status_code == 204
    assert response.content == b""

    after = await api.get("/users/me", headers=_bearer(token))
    assert after.status_code == 401
    assert after.json()["detail"] == "token has been revoked"
    # A second logout with the same token is refused too: it is no longer valid.
    assert (await api.post("/auth/logout", headers=_bearer(token))).status_code == 401
    # The same account's other session is untouched.
    assert (await api.get("/users/me", headers=_bearer(other))).status_code == 200

    claims = jwt.decode(token, options={"verify_signature": False})
    async with sessions() as session:
        row = await session.get(RevokedToken, claims["jti"])
    assert row is not None
    assert row.expires_at == datetime.fromtimestamp(claims["exp"], UTC)


async def test_logout_sweeps_expired_denylist_rows(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(RevokedToken(jti="long-gone", expires_at=now - timedelta(minutes=5)))
        session.add(RevokedToken(jti="still-live", expires_at=now + timedelta(minutes=5)))
    await create_user(sessions, email="sweep@example.com")
    token = await _token(api, "sweep@example.com")
    assert (await api.post("/auth/logout", headers=_bearer(token))).status_code == 204
    async with sessions() as session:
        left = set(await session.scalars(select(RevokedToken.jti)))
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert left == {"still-live", jti}


async def test_logout_needs_a_token(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/logout")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
