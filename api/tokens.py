"""Issuing and verifying access tokens.

Verification is local: the signature is checked against keys this process
already holds (from settings, or the auth service's JWKS fetched once and
cached), never by calling the auth service per request. Revocation (logout,
password change) is read from the shared database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy import select

from api.keys import ALLOWED_ALGORITHMS, SigningKey, VerificationKey, key_from_jwk
from core.db import SessionFactory, autocommit
from core.models import RevokedToken, Role, User

REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "iss", "aud", "jti", "ver"]


class InvalidToken(Exception):
    """The token cannot be trusted. The message is safe to show to the client."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified token."""

    user_id: uuid.UUID
    role: Role
    jti: str
    expires_at: datetime
    # Read with the revocation check, in the same row: a checkout names its
    # customer in the workflow's summary without a query of its own.
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    jti: str


class TokenIssuer:
    def __init__(self, key: SigningKey, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds

    def issue(self, user: User) -> IssuedToken:
        now = datetime.now(UTC)
        jti = uuid.uuid4().hex
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "ver": user.token_version,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self._ttl),
            "iss": self._issuer,
            "aud": self._audience,
            "jti": jti,
        }
        token = jwt.encode(
            claims, self._key.key, algorithm=self._key.algorithm, headers={"kid": self._key.kid}
        )
        return IssuedToken(token, self._ttl, jti)


class KeyStore:
    """Verification keys by ``kid``: static ones, plus a cached remote JWKS.

    An unknown ``kid`` triggers at most one JWKS refresh per ``min_refresh``
    seconds, so a flood of forged kids cannot turn into a flood of fetches.
    """

    def __init__(
        self,
        static_keys: list[VerificationKey],
        *,
        jwks_url: str | None = None,
        cache_seconds: int = 300,
        min_refresh: float = 10.0,
    ) -> None:
        self._static = {k.kid: k for k in static_keys}
        self._remote: dict[str, VerificationKey] = {}
        self._jwks_url = jwks_url
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> VerificationKey | None:
        if kid in self._static:
            return self._static[kid]
        if self._jwks_url is None:
            return None
        age = time.monotonic() - self._fetched_at
        if age > self._cache_seconds or (kid not in self._remote and age > self._min_refresh):
            await self._refresh()
        return self._remote.get(kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.to_jwk() for k in self._static.values()]}

    async def _refresh(self) -> None:
        assert self._jwks_url is not None
        async with self._lock:
            if time.monotonic() - self._fetched_at <= self._min_refresh:
                return  # another request refreshed while we waited
            self._fetched_at = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self._jwks_url)
                    response.raise_for_status()
                    keys = response.json()["keys"]
            except (httpx.HTTPError, ValueError, KeyError):
                return  # keep the keys we had; verification fails closed on unknown kids
            remote = {}
            for jwk in keys:
                try:
                    key = key_from_jwk(jwk)
                except (ValueError, KeyError, jwt.PyJWTError):
                    continue
                remote[key.kid] = key
            self._remote = remote


class TokenVerifier:
    def __init__(
        self, keys: KeyStore, sessions: SessionFactory, *, issuer: str, audience: str
    ) -> None:
        self._keys = keys
        self._sessions = sessions
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> Principal:
        claims = await self._verified_claims(token)
        try:
            user_id = uuid.UUID(claims["sub"])
            role = Role(claims["role"])
            version = int(claims["ver"])
        except (ValueError, TypeError) as err:
            raise InvalidToken("token claims are malformed") from err
        # One round trip for both checks: every authenticated request pays it.
        revoked = select(RevokedToken.jti).where(RevokedToken.jti == claims["jti"]).exists()
        async with autocommit(self._sessions) as session:
            row = (
                await session.execute(
                    select(User.token_version, revoked, User.email).where(User.id == user_id)
                )
            ).one_or_none()
        if row is None or row[1] or row[0] != version:
            raise InvalidToken("token has been revoked")
        return Principal(
            user_id=user_id,
            role=role,
            jti=claims["jti"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            email=row[2],
        )

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise InvalidToken("token is malformed") from err
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise InvalidToken("token algorithm is not accepted")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        key = await self._keys.get(kid)
        # The key decides the algorithm, never the token: this is what stops a
        # token signed with HS256 using the public key as the secret.
        if key is None or key.algorithm != algorithm:
            raise InvalidToken("token key is unknown")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as err:
            raise InvalidToken("token has expired") from err
        except jwt.ImmatureSignatureError as err:
            raise InvalidToken("token is not valid yet") from err
        except jwt.InvalidAudienceError as err:
            raise InvalidToken("token audience is wrong") from err
        except jwt.InvalidIssuerError as err:
            raise InvalidToken("token issuer is wrong") from err
        except jwt.PyJWTError as err:
            raise InvalidToken("token is invalid") from err
        return claims
