"""Writing one line of an order's timeline, shared by every activity.

Events are inserted in the same transaction as the change they describe, so
the timeline never claims something the database does not hold (or misses
something it does).
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import OrderEvent


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
        .on_conflict_do_nothing(index_elements=["order_id", "dedupe_key"])
        .returning(OrderEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None
