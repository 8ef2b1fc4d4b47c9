"""PostgreSQL statements per request, per process, as ``pg_stat_statements`` counts them.

Issue 16 asks for each order's database round trips. The bench's PostgreSQL
loads ``pg_stat_statements`` (``tooling.bench.processes.start_postgres``),
and each process of a stack connects as its own role: the API as
``bench_api``, the worker as ``bench_worker``. The bench's own queries
(setting up the shop, waiting for sagas, the books, the audit) run as
``bench_driver`` and the migrations as ``postgres``, so none of them is
counted against the product. A phase resets the counters when it starts and
reads them, per role, when it ends.

A statement is a round trip, with three exceptions, each checked against
SQLAlchemy 2 and psycopg 3:

- a flush of several rows of one table whose keys are all known before the
  insert goes through psycopg's ``executemany``, which pipelines them: one
  round trip, a statement per row (in today's saga, a reservation's holds
  and ledger lines). Rows with a generated key go as one multi-row INSERT
  (SQLAlchemy's "insertmanyvalues"): one statement;
- the API's ping of a pooled connection idle for a second or more (an
  empty query, ``;``; the worker has none; ``core.db.create_engine``) is a
  round trip that PostgreSQL counts as no statement;
- so is psycopg preparing a statement it has run five times on a connection
  (once per statement and connection, then never again).

psycopg sends BEGIN on its own before a transaction's first statement, and
COMMIT or ROLLBACK at its end: each a round trip, counted apart as
transaction control.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

API_ROLE = "bench_api"
WORKER_ROLE = "bench_worker"
DRIVER_ROLE = "bench_driver"
ROLES = (API_ROLE, WORKER_ROLE, DRIVER_ROLE)
# The processes a phase reports, by the role each one connects as.
MEASURED = {API_ROLE: "api", WORKER_ROLE: "worker"}

# The first word of a statement that only delimits a transaction (END and
# ABORT are PostgreSQL's other names for COMMIT and ROLLBACK; SAVEPOINT and
# RELEASE are a nested transaction's BEGIN and COMMIT).
TRANSACTION_CONTROL = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"}
)


@dataclass(frozen=True)
class StatementCount:
    """What one process ran during a phase; ``statements`` includes the transaction control."""

    statements: int
    transaction_control: int

    def per(self, requests: int) -> StatementRate:
        """The same per completed request (NaN when none completed)."""
        if requests <= 0:
            return StatementRate(math.nan, math.nan)
        return StatementRate(self.statements / requests, self.transaction_control / requests)


@dataclass(frozen=True)
class StatementRate:
    """Statements per completed request; ``statements`` includes the transaction control."""

    statements: float
    transaction_control: float


def is_transaction_control(query: str) -> bool:
    """Whether ``query`` (pg_stat_statements' text of it) is BEGIN, COMMIT, ROLLBACK or the like."""
    words = query.split(None, 1)
    return bool(words) and words[0].rstrip(";").upper() in TRANSACTION_CONTROL


def count_statements(rows: Iterable[tuple[str, str, int]]) -> dict[str, StatementCount]:
    """Rows of (role, query, calls) summed per measured process.

    Every measured process is in the answer, with zero when it ran nothing
    (a ceiling without a database); other roles' rows are left out.
    """
    totals = {process: [0, 0] for process in MEASURED.values()}
    for role, query, calls in rows:
        process = MEASURED.get(role)
        if process is None:
            continue
        totals[process][0] += calls
        if is_transaction_control(query):
            totals[process][1] += calls
    return {process: StatementCount(*counts) for process, counts in totals.items()}


# --- on the server ---------------------------------------------------------------

# Top-level statements only (a function's own statements are no round trip),
# in the database the engine is connected to (each stack has its own).
_READ = text(
    "SELECT r.rolname, s.query, s.calls"
    " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
    " WHERE s.toplevel"
    " AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def reset_statements(engine: AsyncEngine) -> None:
    """Zero the counters (of every database: only one stack runs at a time)."""
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_stat_statements_reset()"))


async def read_statements(engine: AsyncEngine) -> dict[str, StatementCount]:
    """What each measured process ran since the last reset, in ``engine``'s database."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_READ)).tuples().all()
    return count_statements((str(role), str(query), int(calls)) for role, query, calls in rows)
