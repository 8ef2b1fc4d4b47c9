"""Token attacks, each answered 401, and key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from api.keys import generate_private_key_pem, load_private_key
from api.tokens import TokenIssuer
from core.db import SessionFactory
from core.models import User
from core.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, create_user


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )


def _claims(user: User, settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": str(user.id),
        "role": user.role.value,
        "ver": user.token_version,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


class Forge:
    """Builds tokens as an attacker (or a careless issuer) would."""

    def __init__(self, settings: Settings, signing_key_pem: str, user: User) -> None:
        self.settings = settings
        self.key = load_private_key(signing_key_pem)
        self.user = user

    def signed(self, *, kid: str | None = None, **claims: Any) -> str:
        return jwt.encode(
            _claims(self.user, self.settings, **claims),
            self.key.key,
            algorithm="EdDSA",
            headers={"kid": kid or self.key.kid},
        )


@pytest.fixture
async def victim(sessions: SessionFactory) -> User:
    return await create_user(sessions, email="victim@example.com")


@pytest.fixture
def forge(settings: Settings, signing_key_pem: str, victim: User) -> Forge:
    return Forge(settings, signing_key_pem, victim)


async def _status(api: httpx.AsyncClient, token: str) -> int:
    response = await api.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "unauthorized"
    return response.status_code


async def test_the_honest_token_works(api: httpx.AsyncClient, forge: Forge) -> None:
    # Every attack below is this token with one thing changed.
    assert await _status(api, forge.signed()) == 200


def _alg_none(forge: Forge) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": forge.key.kid}
    return _unsigned(header, _claims(forge.user, forge.settings)) + "."


def _alg_none_with_signature(forge: Forge) -> str:
    header = {"alg": "none", "kid": forge.key.kid}
    real_signature = forge.signed().split(".")[2]
    return _unsigned(header, _claims(forge.user, forge.settings)) + "." + real_signature


def _hs256_with_public_key(forge: Forge) -> str:
    # The classic confusion attack: HMAC keyed with the (public) verification key.
    public_pem = forge.key.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": forge.key.kid}
    signing_input = _unsigned(header, _claims(forge.user, forge.settings))
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _es256_under_our_kid(forge: Forge) -> str:
    # An allowed algorithm, but not the one our key is for.
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        _claims(forge.user, forge.settings),
        other,
        algorithm="ES256",
        headers={"kid": forge.key.kid},
    )


def _unknown_kid(forge: Forge) -> str:
    stranger = load_private_key(generate_private_key_pem())
    return jwt.encode(
        _claims(forge.user, forge.settings),
        stranger.key,
        algorithm="EdDSA",
        headers={"kid": stranger.kid},
    )


def _our_kid_other_key(forge: Forge) -> str:
    stranger = load_private_key(generate_private_key_pem())
    return jwt.encode(
        _claims(forge.user, forge.settings),
        stranger.key,
        algorithm="EdDSA",
        headers={"kid": forge.key.kid},
    )


def _no_kid(forge: Forge) -> str:
    return jwt.encode(_claims(forge.user, forge.settings), forge.key.key, algorithm="EdDSA")


def _tampered_payload(forge: Forge) -> str:
    header, _, signature = forge.signed().split(".")
    claims = _claims(forge.user, forge.settings, role="admin")
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _tampered_subject(forge: Forge) -> str:
    header, payload, signature = forge.signed().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _ago(seconds: int) -> int:
    return int(datetime.now(UTC).timestamp()) - seconds


# Each attack, and the reason it must be refused for (so it is not refused by accident).
ATTACKS: dict[str, tuple[Callable[[Forge], str], str]] = {
    "alg-none": (_alg_none, "token algorithm is not accepted"),
    "alg-none-with-signature": (_alg_none_with_signature, "token algorithm is not accepted"),
    "hs256-signed-with-public-key": (_hs256_with_public_key, "token algorithm is not accepted"),
    "es256-under-our-kid": (_es256_under_our_kid, "token key is unknown"),
    "unknown-kid": (_unknown_kid, "token key is unknown"),
    "our-kid-other-key": (_our_kid_other_key, "token is invalid"),
    "no-kid": (_no_kid, "token has no key id"),
    "unknown-kid-string": (lambda f: f.signed(kid="no-such-key"), "token key is unknown"),
    "expired": (
        lambda f: f.signed(iat=_ago(7200), nbf=_ago(7200), exp=_ago(60)),
        "token has expired",
    ),
    "not-yet-valid": (lambda f: f.signed(nbf=_ago(-3600)), "token is not valid yet"),
    "wrong-audience": (lambda f: f.signed(aud="someone-else"), "token audience is wrong"),
    "wrong-issuer": (lambda f: f.signed(iss="https://evil.example"), "token issuer is wrong"),
    "no-expiry": (lambda f: f.signed(exp=None), "token is invalid"),
    "no-jti": (lambda f: f.signed(jti=None), "token is invalid"),
    "no-version": (lambda f: f.signed(ver=None), "token is invalid"),
    "old-version": (lambda f: f.signed(ver=-1), "token has been revoked"),
    "unknown-role": (lambda f: f.signed(role="superuser"), "token claims are malformed"),
    "subject-not-a-uuid": (lambda f: f.signed(sub="admin"), "token claims are malformed"),
    "tampered-payload": (_tampered_payload, "token is invalid"),
    "tampered-subject": (_tampered_subject, "token is invalid"),
    "garbage": (lambda f: "not-a-token", "token is malformed"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attack_is_401(api: httpx.AsyncClient, forge: Forge, attack: str) -> None:
    build, reason = ATTACKS[attack]
    response = await api.get("/users/me", headers={"Authorization": f"Bearer {build(forge)}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == reason


async def _login(api: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD) -> str:
    response = await api.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


async def test_revoked_after_logout(api: httpx.AsyncClient, victim: User) -> None:
    token = await _login(api, victim.email)
    assert await _status(api, token) == 200
    auth = {"Authorization": f"Bearer {token}"}
    assert (await api.post("/auth/logout", headers=auth)).status_code == 204
    assert await _status(api, token) == 401


async def test_revoked_after_password_change(
    api: httpx.AsyncClient, victim: User, forge: Forge
) -> None:
    token = await _login(api, victim.email)
    handmade = forge.signed()  # also issued before the change
    response = await api.post(
        "/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "brand-new-secret"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 204
    assert await _status(api, token) == 401
    assert await _status(api, handmade) == 401
    assert await _status(api, await _login(api, victim.email, "brand-new-secret")) == 200


# --- rotation -------------------------------------------------------------


@pytest.fixture
async def rotated(
    settings: Settings, signing_key_pem: str, sessions: SessionFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The main API with a new key configured in front of the test's old one."""
    from api.main import create_app

    new_pem = generate_private_key_pem()
    rotated_settings = settings.model_copy(
        update={"jwt_private_keys": [SecretStr(new_pem), SecretStr(signing_key_pem)]}
    )
    app = create_app(rotated_settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, new_pem


async def test_after_rotation_the_newest_key_signs_and_the_older_still_verifies(
    rotated: tuple[httpx.AsyncClient, str], victim: User, forge: Forge, settings: Settings
) -> None:
    api, new_pem = rotated
    new_kid, old_kid = load_private_key(new_pem).kid, forge.key.kid

    token = await _login(api, victim.email)
    assert jwt.get_unverified_header(token)["kid"] == new_kid
    assert await _status(api, token) == 200

    # A token the old key signed before the rotation is still good.
    before_rotation = TokenIssuer(
        forge.key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=600,
    ).issue(victim)
    assert await _status(api, before_rotation.access_token) == 200

    jwks = (await api.get("/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]


async def test_jwks_holds_public_keys_only(api: httpx.AsyncClient, forge: Forge) -> None:
    response = await api.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kid"] == forge.key.kid
    assert key["alg"] == "EdDSA" and key["kty"] == "OKP" and key["crv"] == "Ed25519"
    assert key["use"] == "sig"
    assert "d" not in key  # the private part
    # The published key really verifies our tokens.
    public = jwt.PyJWK(key).key
    claims = jwt.decode(
        forge.signed(), public, algorithms=["EdDSA"], audience=forge.settings.jwt_audience
    )
    assert claims["sub"] == str(forge.user.id)
