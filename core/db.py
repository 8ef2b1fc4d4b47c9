"""The SQLAlchemy engine and session factory.

Everything talks to PostgreSQL through psycopg 3; the async engine serves the
API and the activities, and Alembic uses a sync engine on the same URL.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]


def sqlalchemy_url(url: str) -> str:
    """Normalise a libpq-style URL to SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def create_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """A pooled async engine.

    ``pre_ping`` tests each pooled connection with a round trip before use,
    so a request after a database restart gets a fresh one instead of an
    error. Callers that retry anyway (the worker's activities) turn it off:
    the first use of a stale connection fails that one attempt, SQLAlchemy
    then drops the whole pool, and the retry connects afresh.
    """
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # expire_on_commit=False: objects are read after commit to build responses.
    return async_sessionmaker(engine, expire_on_commit=False)
