"""core/temporal.py's TLS configuration: every combination a deployment can have.

Temporal Cloud with mTLS or an API key, a self-hosted frontend with a private
CA (server-only TLS), or both. Only the files that are configured are read, so
a Secret holding just a CA works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.service import TLSConfig

from core.settings import Settings
from core.temporal import tls_config

CERT, KEY, CA = b"client-cert", b"client-key", b"private-ca"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"cert": tmp_path / "tls.crt", "key": tmp_path / "tls.key", "ca": tmp_path / "ca.crt"}
    for name, content in (("cert", CERT), ("key", KEY), ("ca", CA)):
        paths[name].write_bytes(content)
    return paths


def test_plain_connections_and_tls_with_public_roots() -> None:
    assert tls_config(settings()) is False
    assert tls_config(settings(temporal_tls=True)) is True
    # An API key (Temporal Cloud's regional endpoint) implies TLS.
    assert tls_config(settings(temporal_api_key=SecretStr("k"))) is True


def test_server_only_tls_with_a_private_ca(files: dict[str, Path], tmp_path: Path) -> None:
    # The mount holds the CA alone: nothing else may be read.
    (tmp_path / "tls.crt").unlink()
    (tmp_path / "tls.key").unlink()
    config = tls_config(settings(temporal_tls=True, temporal_tls_server_ca_cert_path=files["ca"]))
    assert isinstance(config, TLSConfig)
    assert (config.server_root_ca_cert, config.client_cert, config.client_private_key) == (
        CA,
        None,
        None,
    )


def test_mtls_with_public_roots(files: dict[str, Path]) -> None:
    config = tls_config(
        settings(
            temporal_tls_client_cert_path=files["cert"], temporal_tls_client_key_path=files["key"]
        )
    )
    assert isinstance(config, TLSConfig)
    assert (config.client_cert, config.client_private_key, config.server_root_ca_cert) == (
        CERT,
        KEY,
        None,
    )


def test_mtls_with_a_private_ca(files: dict[str, Path]) -> None:
    config = tls_config(
        settings(
            temporal_tls_client_cert_path=files["cert"],
            temporal_tls_client_key_path=files["key"],
            temporal_tls_server_ca_cert_path=files["ca"],
        )
    )
    assert isinstance(config, TLSConfig)
    assert (config.client_cert, config.client_private_key, config.server_root_ca_cert) == (
        CERT,
        KEY,
        CA,
    )


def test_api_key_with_a_private_ca(files: dict[str, Path]) -> None:
    config = tls_config(
        settings(temporal_api_key=SecretStr("k"), temporal_tls_server_ca_cert_path=files["ca"])
    )
    assert isinstance(config, TLSConfig)
    assert (config.server_root_ca_cert, config.client_cert) == (CA, None)


@pytest.mark.parametrize("given", ["cert", "key"])
def test_half_a_client_identity_is_refused(files: dict[str, Path], given: str) -> None:
    field = {"cert": "temporal_tls_client_cert_path", "key": "temporal_tls_client_key_path"}
    with pytest.raises(ValidationError):
        settings(**{field[given]: files[given]})
