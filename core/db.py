"""The SQLAlchemy engine and session factory.

Everything talks to PostgreSQL through psycopg 3; the async engine serves the
API and the activities, and Alembic uses a sync engine on the same URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from core.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def sqlalchemy_url(url: str) -> str:
    """Normalise a libpq-style URL to SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    pre_ping: bool = True,
    prepared_statements: bool = True,
) -> AsyncEngine:
    """A pooled async engine of at most ``pool_size + max_overflow`` connections.

    ``max_overflow`` defaults to ``pool_size``. ``prepared_statements=False``
    is for PgBouncer in transaction mode: psycopg 3 then never prepares a
    statement (``prepare_threshold=None``), since the next transaction may
    run on another server connection that does not know it.

    ``pre_ping`` tests each pooled connection with a round trip before use,
    so a request after a database restart gets a fresh one instead of an
    error. Callers that retry anyway (the worker's activities) turn it off:
    the first use of a stale connection fails that one attempt, SQLAlchemy
    then drops the whole pool, and the retry connects afresh.
    """
    connect_args: dict[str, object] = {} if prepared_statements else {"prepare_threshold": None}
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=pre_ping,
        connect_args=connect_args,
    )


def create_engine_from_settings(settings: Settings, *, pre_ping: bool = True) -> AsyncEngine:
    """The engine a long-running process opens, sized by its settings."""
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set")
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pre_ping=pre_ping,
        prepared_statements=settings.db_prepared_statements,
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # expire_on_commit=False: objects are read after commit to build responses.
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def autocommit(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit on their own.

    A plain session wraps even a single statement in BEGIN ... COMMIT (or
    ROLLBACK): two round trips more. And psycopg answers every ROLLBACK on a
    connection holding prepared statements with a DEALLOCATE ALL (it cannot
    know which survived), so hot reads ending that way never stayed
    prepared. In autocommit none of that is sent.

    For reads that need no snapshot shared between their statements, and for
    writes made of one statement (a data-modifying CTE is one), which is
    atomic on its own. Never for a write of several statements.
    """
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
