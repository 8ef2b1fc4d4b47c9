"""Writing one line of an order's timeline, shared by every activity.

Events are written in the same transaction as the change they describe, or
in the same statement (``change_with_line``), so the timeline never claims something
the database does not hold (or misses something it does).
"""

from __future__ import annotations

import uuid

from sqlalchemy import Update, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import OrderEvent

_DEDUPE = ["order_id", "dedupe_key"]


async def add_event(
    session: AsyncSession,
    order_id: uuid.UUID,
    type: str,
    detail: str = "",
    dedupe_key: str | None = None,
) -> bool:
    """Insert an event; with a ``dedupe_key`` a retried activity adds it only once.

    Returns whether a row was written.
    """
    # ON CONFLICT on (order_id, dedupe_key): a second insert of the same
    # logical event is silently dropped instead of failing the transaction.
    # Rows without a key never conflict (NULLs are distinct).
    stmt = (
        insert(OrderEvent)
        .values(order_id=order_id, type=type, detail=detail, dedupe_key=dedupe_key)
        .on_conflict_do_nothing(index_elements=_DEDUPE)
        .returning(OrderEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def change_with_line(
    session: AsyncSession, change: Update, type: str, detail: str, dedupe_key: str
) -> bool:
    """Make ``change`` and write its timeline line in one statement; whether a row changed.

    ``change`` is an UPDATE ... RETURNING the changed row's ``order_id``. The
    line is written once per row it returns, so only when the change
    happened, deduplicated like ``add_event``. Change and line are one
    statement (data-modifying CTEs): atomic without a transaction around
    them, one round trip.
    """
    changed = change.cte("changed")
    line = (
        insert(OrderEvent)
        .from_select(
            ["order_id", "type", "detail", "dedupe_key"],
            select(changed.c.order_id, literal(type), literal(detail), literal(dedupe_key)),
        )
        .on_conflict_do_nothing(index_elements=_DEDUPE)
        .cte("timeline_line")
    )
    rows = await session.scalar(select(func.count()).select_from(changed).add_cte(line))
    return bool(rows)
