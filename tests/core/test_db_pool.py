"""core/db.py on the real PostgreSQL: pool size, PgBouncer mode, autocommit, dropped connections."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from core.db import (
    SessionFactory,
    autocommit,
    create_engine,
    create_engine_from_settings,
    create_session_factory,
)
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


async def _backend_pid(sessions: SessionFactory) -> int:
    async with sessions() as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


def _drop(database_url: str, pid: int) -> None:
    """What a database restart or a failover does to a pooled connection."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])


async def test_a_connection_dropped_while_idle_is_replaced_before_use(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle=0.05)
    sessions = create_session_factory(engine)
    try:
        dropped = await _backend_pid(sessions)
        _drop(database_url, dropped)
        await asyncio.sleep(0.1)  # idle longer than ping_after_idle

        assert await _backend_pid(sessions) != dropped
    finally:
        await engine.dispose()


async def test_a_connection_dropped_in_busy_use_fails_once_then_the_pool_recovers(
    database_url: str,
) -> None:
    # Used a moment ago, so not tested before use: the drop surfaces once,
    # as it would for a statement in flight, and the next use connects afresh.
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_after_idle=60)
    sessions = create_session_factory(engine)
    try:
        dropped = await _backend_pid(sessions)
        _drop(database_url, dropped)

        with pytest.raises(DBAPIError) as caught:
            await _backend_pid(sessions)
        assert caught.value.connection_invalidated
        assert await _backend_pid(sessions) != dropped
    finally:
        await engine.dispose()
