"""Fixtures for tests that need the whole app on real parts (a pytest plugin: tests/conftest.py).

``stack``: the API in-process and a real worker on the Temporal dev server and
PostgreSQL, one per test module (each test still gets clean tables). A module
that needs other settings defines its own ``stack`` with ``dev_settings``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from core.db import SessionFactory
from core.models import User
from core.settings import Settings
from tests.support.e2e import Stack, free_port, running_stack
from tests.support.factories import auth_header, create_user
from tooling.smtp_sink import start_smtp_sink


def dev_settings(database_url: str, signing_key_pem: str, data_dir: Path) -> Settings:
    """Dev-mode settings on the test database and signing key, nothing from the environment."""
    return Settings(
        mode="dev",
        data_dir=data_dir,
        database_url=database_url,
        jwt_private_keys=[SecretStr(signing_key_pem)],
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="module")
async def stack(
    database_url: str,
    signing_key_pem: str,
    temporal_dev_server: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """One worker and API for the module: each test still has its own clean tables."""
    settings = dev_settings(database_url, signing_key_pem, tmp_path_factory.mktemp("stack"))
    async with running_stack(settings, temporal_dev_server.client, database_url) as running:
        yield running


@pytest.fixture
async def customer(sessions: SessionFactory) -> User:
    return await create_user(sessions, email=f"buyer-{uuid.uuid4().hex[:8]}@example.com")


@pytest.fixture
def headers(stack: Stack, customer: User) -> dict[str, str]:
    """A Bearer header for ``customer``."""
    return auth_header(stack.settings, customer)


@pytest.fixture
async def sink_port(sessions: SessionFactory) -> AsyncIterator[int]:
    """A dev SMTP sink storing what it catches in ``caught_mail`` (tests/support/caught_mail.py)."""
    port = free_port()
    server = await start_smtp_sink(sessions, "127.0.0.1", port)
    yield port
    server.close()
    await server.wait_closed()
