"""The auth service as its own app, and services that verify its tokens from the JWKS."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request, Response

from api.auth.app import create_auth_app
from api.keys import generate_private_key_pem, load_private_key
from api.main import create_app
from api.tokens import InvalidToken, KeyStore, TokenVerifier
from core.db import SessionFactory
from core.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, create_user
from tests.support.polling import poll_until

JWKS_PATH = "/.well-known/jwks.json"


@asynccontextmanager
async def _in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def auth(settings: Settings, sessions: SessionFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The standalone auth service, in-process."""
    async with _in_process(create_auth_app(settings)) as client:
        yield client


@dataclass
class LiveAuth:
    url: str
    requests: list[str] = field(default_factory=list)

    @property
    def jwks_fetches(self) -> int:
        return self.requests.count(JWKS_PATH)


@pytest.fixture
async def live_auth(settings: Settings, sessions: SessionFactory) -> AsyncIterator[LiveAuth]:
    """The auth service served by uvicorn on a free port of 127.0.0.1."""
    app = create_auth_app(settings)
    # Bound here and handed to uvicorn, so no other process can take the port
    # between choosing it and listening on it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    live = LiveAuth(f"http://127.0.0.1:{sock.getsockname()[1]}")

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        live.requests.append(request.url.path)
        return await call_next(request)

    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        assert not serving.done(), "uvicorn stopped before it started"
        return server.started

    await poll_until(started, "uvicorn listening", interval=0.01)
    try:
        yield live
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _login_over_http(url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# --- the standalone app ---------------------------------------------------


async def test_auth_app_serves_the_auth_contract_and_health(
    auth: httpx.AsyncClient,
) -> None:
    assert (await auth.get("/healthz")).json() == {"status": "ok"}
    registered = await auth.post(
        "/auth/register",
        json={"email": "solo@example.com", "password": "solo-password", "name": "S"},
    )
    assert registered.status_code == 201
    login = await auth.post(
        "/auth/token", data={"username": "solo@example.com", "password": "solo-password"}
    )
    token = login.json()["access_token"]
    me = await auth.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == registered.json()
    assert len((await auth.get(JWKS_PATH)).json()["keys"]) == 1
    # Only auth: the catalog and orders live in the main API.
    assert (await auth.get("/products")).status_code == 404
    paths = set((await auth.get("/openapi.json")).json()["paths"])
    assert {"/auth/register", "/auth/token", "/auth/login", "/auth/logout", "/users/me"} <= paths
    assert {"/users/me/password", JWKS_PATH, "/healthz", "/readyz"} <= paths


async def test_auth_app_readiness_is_the_database_alone(auth: httpx.AsyncClient) -> None:
    response = await auth.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_auth_app_not_ready_names_the_database_only(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql://postgres:@/postgres?host=/nonexistent-ordersaga"}
    )
    async with _in_process(create_auth_app(broken)) as auth:
        response = await auth.get("/readyz")
    assert response.status_code == 503
    assert set(response.json()["checks"]) == {"database"}


# --- verifying from the JWKS alone -----------------------------------------


async def test_a_verifier_with_only_the_jwks_url_verifies_tokens(
    live_auth: LiveAuth, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="remote@example.com")
    token = await _login_over_http(live_auth.url, "remote@example.com")
    keys = KeyStore([], jwks_url=live_auth.url + JWKS_PATH)
    verifier = TokenVerifier(
        keys, sessions, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )

    principal = await verifier.verify(token)
    assert principal.user_id == user.id
    assert live_auth.jwks_fetches == 1
    # Verification is local from then on: no call to the auth service per token.
    for _ in range(5):
        await verifier.verify(token)
    assert live_auth.jwks_fetches == 1


async def test_unknown_kids_do_not_flood_the_auth_service(
    live_auth: LiveAuth, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="flood@example.com")
    keys = KeyStore([], jwks_url=live_auth.url + JWKS_PATH)
    verifier = TokenVerifier(
        keys, sessions, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    claims = {
        "sub": str(user.id),
        "role": "customer",
        "ver": 0,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": "x",
        "iat": 0,
        "exp": 2**40,
    }

    async def forged() -> None:
        stranger = load_private_key(generate_private_key_pem())
        token = jwt.encode(claims, stranger.key, algorithm="EdDSA", headers={"kid": stranger.kid})
        with pytest.raises(InvalidToken, match="key is unknown"):
            await verifier.verify(token)

    # Fifty forged kids, many at once: one fetch of the key set in all.
    await asyncio.gather(*(forged() for _ in range(25)))
    for _ in range(25):
        await forged()
    assert live_auth.jwks_fetches == 1
    # And the real key still verifies from that single fetch.
    await verifier.verify(await _login_over_http(live_auth.url, "flood@example.com"))
    assert live_auth.jwks_fetches == 1


async def test_the_main_api_can_verify_from_the_jwks_without_any_key(
    live_auth: LiveAuth, sessions: SessionFactory, settings: Settings
) -> None:
    user = await create_user(sessions, email="split@example.com")
    token = await _login_over_http(live_auth.url, "split@example.com")
    verify_only = settings.model_copy(
        update={"jwt_private_keys": [], "jwks_url": live_auth.url + JWKS_PATH}
    )
    async with _in_process(create_app(verify_only)) as api:
        me = await api.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["id"] == str(user.id)
        # It holds no signing key, so it cannot issue tokens itself.
        login = await api.post(
            "/auth/login", json={"email": "split@example.com", "password": DEFAULT_PASSWORD}
        )
        assert login.status_code == 503
        assert login.json()["type"] == "issuer-unavailable"
    assert live_auth.jwks_fetches == 1


async def test_the_main_api_without_serve_auth_has_no_auth_routes(
    settings: Settings, sessions: SessionFactory
) -> None:
    async with _in_process(create_app(settings.model_copy(update={"serve_auth": False}))) as api:
        for path in ("/auth/register", "/auth/login", "/auth/token", "/auth/logout"):
            assert (await api.post(path, json={})).status_code == 404
        assert (await api.get("/users/me")).status_code == 404
        assert (await api.get(JWKS_PATH)).status_code == 404
        assert (await api.get("/healthz")).status_code == 200
