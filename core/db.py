"""The SQLAlchemy engine and session factory.

Everything talks to PostgreSQL through psycopg 3; the async engine serves the
API and the activities, and Alembic uses a sync engine on the same URL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from core.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def sqlalchemy_url(url: str) -> str:
    """Normalise a libpq-style URL to SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


# A pooled connection idle this long is tested before use (see create_engine).
PING_AFTER_IDLE = 1.0  # seconds


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    ping_after_idle: float | None = PING_AFTER_IDLE,
    prepared_statements: bool = True,
) -> AsyncEngine:
    """A pooled async engine of at most ``pool_size + max_overflow`` connections.

    ``max_overflow`` defaults to ``pool_size``. ``prepared_statements=False``
    is for PgBouncer in transaction mode: psycopg 3 then never prepares a
    statement (``prepare_threshold=None``), since the next transaction may
    run on another server connection that does not know it.

    A connection that sat in the pool for ``ping_after_idle`` seconds or
    more is tested with a round trip before use and replaced if the
    database dropped it, so the first request after a restart or a failover
    in a quiet moment gets a fresh connection instead of an error.
    SQLAlchemy's ``pool_pre_ping`` would test every checkout, a round trip
    on every session of every request (three per checkout) for connections
    that were in use a few milliseconds before. One dropped while in busy
    use fails its next use once, as any statement in flight at that moment
    would; SQLAlchemy then discards the whole pool, so the next use
    connects afresh. ``None`` never tests: for callers that retry anyway
    (the worker's activities).
    """
    connect_args: dict[str, object] = {} if prepared_statements else {"prepare_threshold": None}
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        connect_args=connect_args,
    )
    if ping_after_idle is not None:
        _ping_idle_connections(engine, ping_after_idle)
    return engine


def _ping_idle_connections(engine: AsyncEngine, after: float) -> None:
    """SQLAlchemy's pessimistic disconnect handling, for idle connections only."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(_connection: object, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _taken(connection: Any, record: ConnectionPoolEntry, _proxy: object) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < after:
            return  # new, or in use a moment ago
        try:
            alive = dialect.do_ping(connection)
        except Exception as err:  # whatever a dead socket raises
            # The pool drops this connection and checks out another.
            raise exc.DisconnectionError() from err
        if not alive:
            raise exc.DisconnectionError()


_IDLE_SINCE = "ordersaga_idle_since"


def create_engine_from_settings(
    settings: Settings, *, ping_after_idle: float | None = PING_AFTER_IDLE
) -> AsyncEngine:
    """The engine a long-running process opens, sized by its settings."""
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set")
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        ping_after_idle=ping_after_idle,
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
