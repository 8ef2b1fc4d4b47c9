"""Signing and verification keys for access tokens.

Keys are asymmetric (Ed25519 for EdDSA, or P-256 for ES256). Only the auth
service holds private keys; every other service needs just the public half,
from settings or from the auth service's JWKS. Each key's ``kid`` is its
RFC 7638 thumbprint, so it is stable and needs no bookkeeping.

Rotation: configure several private keys, newest first. The first signs; all
of them verify, so tokens signed by a retiring key stay valid until they
expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from core.settings import Settings

PrivateKey = Ed25519PrivateKey | EllipticCurvePrivateKey
PublicKey = Ed25519PublicKey | EllipticCurvePublicKey

# Algorithms this service will ever accept; "none" and HMAC are never here.
ALLOWED_ALGORITHMS = ("EdDSA", "ES256")

DEV_KEY_FILE = "jwt-signing-key.pem"


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    key: PublicKey

    def to_jwk(self) -> dict[str, Any]:
        jwk = _public_jwk(self.key)
        jwk.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    key: PrivateKey

    @property
    def public(self) -> VerificationKey:
        return VerificationKey(self.kid, self.algorithm, self.key.public_key())


def _algorithm_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key.curve, SECP256R1):
        return "ES256"
    raise ValueError("only Ed25519 (EdDSA) and P-256 (ES256) keys are supported")


def _public_jwk(key: PublicKey) -> dict[str, Any]:
    text = (
        OKPAlgorithm.to_jwk(key) if isinstance(key, Ed25519PublicKey) else ECAlgorithm.to_jwk(key)
    )
    jwk: dict[str, Any] = json.loads(text)
    return jwk


def _thumbprint(key: PublicKey) -> str:
    jwk = _public_jwk(key)
    # RFC 7638: the required members only, in lexicographic order.
    members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def load_private_key(pem: str) -> SigningKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey | EllipticCurvePrivateKey):
        raise ValueError("only Ed25519 (EdDSA) and P-256 (ES256) keys are supported")
    algorithm = _algorithm_for(key)
    return SigningKey(_thumbprint(key.public_key()), algorithm, key)


def load_public_key(pem: str) -> VerificationKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey | EllipticCurvePublicKey):
        raise ValueError("only Ed25519 (EdDSA) and P-256 (ES256) keys are supported")
    algorithm = _algorithm_for(key)
    return VerificationKey(_thumbprint(key), algorithm, key)


def key_from_jwk(jwk: dict[str, Any]) -> VerificationKey:
    algorithm = jwk.get("alg", "")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise ValueError(f"JWKS key with unsupported alg {algorithm!r}")
    key = PyJWK(jwk, algorithm).key
    return VerificationKey(str(jwk["kid"]), algorithm, key)


def generate_private_key_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def dev_private_key_pem(data_dir: Path) -> str:
    """The dev stack's key, generated once and kept in the data directory."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(generate_private_key_pem())
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text()


def signing_keys(settings: Settings) -> list[SigningKey]:
    """Configured private keys, newest first; dev mode falls back to its own key."""
    pems = [k.get_secret_value() for k in settings.jwt_private_keys]
    if not pems and settings.is_dev and not (settings.jwt_public_keys or settings.jwks_url):
        pems = [dev_private_key_pem(settings.data_dir)]
    return [load_private_key(pem) for pem in pems]


def static_verification_keys(settings: Settings) -> list[VerificationKey]:
    """Keys known without asking the auth service: private keys' halves and public keys."""
    keys = [k.public for k in signing_keys(settings)]
    keys += [load_public_key(pem) for pem in settings.jwt_public_keys]
    return keys
