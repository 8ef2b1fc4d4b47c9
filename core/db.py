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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # pool_pre_ping: a worker outlives database restarts, and a stale pooled
    # connection must be replaced rather than fail an activity attempt.
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # expire_on_commit=False: objects are read after commit to build responses.
    return async_sessionmaker(engine, expire_on_commit=False)
