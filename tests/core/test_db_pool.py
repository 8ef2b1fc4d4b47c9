"""core/db.py: pool sizing, PgBouncer mode and autocommit sessions, on the real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from core.db import autocommit, create_engine, create_engine_from_settings, create_session_factory
from core.settings import Settings


async def prepare_threshold(database_url: str, **options: object) -> object:
    engine = create_engine(database_url, pool_size=1, **options)  # type: ignore[arg-type]
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            raw = await conn.get_raw_connection()
            return raw.driver_connection.prepare_threshold  # type: ignore[union-attr]
    finally:
        await engine.dispose()


async def test_pgbouncer_mode_never_prepares_statements(database_url: str) -> None:
    # psycopg prepares a query after 5 runs by default; behind PgBouncer in
    # transaction mode the next run may land on a server that lacks it.
    assert await prepare_threshold(database_url) == 5
    assert await prepare_threshold(database_url, prepared_statements=False) is None


async def test_settings_size_the_pool(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        db_pool_size=3,
        db_max_overflow=2,
        db_prepared_statements=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = create_engine_from_settings(settings)
    try:
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
        assert pool._max_overflow == 2  # no public reader for the overflow
    finally:
        await engine.dispose()


async def _statement_times(session: AsyncSession) -> tuple[object, object]:
    """now() (the transaction's start) of two statements 20 ms apart."""
    first = await session.scalar(text("SELECT now()"))
    await session.execute(text("SELECT pg_sleep(0.02)"))
    return first, await session.scalar(text("SELECT now()"))


async def test_an_autocommit_session_runs_each_statement_in_a_transaction_of_its_own(
    database_url: str,
) -> None:
    # now() is fixed for a transaction: equal within one, different when
    # each statement commits itself (no BEGIN ... ROLLBACK round trips).
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    sessions = create_session_factory(engine)
    try:
        async with autocommit(sessions) as session:
            first, second = await _statement_times(session)
            assert first != second
        # The pooled connection goes back to transactions for the next user.
        async with sessions() as session:
            first, second = await _statement_times(session)
            assert first == second
    finally:
        await engine.dispose()
