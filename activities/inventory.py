"""Stock reservation activities.

CONTRACT SKELETON: signatures are the interface the workflow codes against.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from core.db import SessionFactory


@dataclass
class StockInput:
    order_id: str


@dataclass
class StockResult:
    order_id: str
    lines: int  # reservation rows changed by this call (0 when it was a no-op)


class InventoryActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="reserve_stock")
    async def reserve(self, input: StockInput) -> StockResult:
        raise NotImplementedError

    @activity.defn(name="release_stock")
    async def release(self, input: StockInput) -> StockResult:
        raise NotImplementedError

    @activity.defn(name="commit_stock")
    async def commit(self, input: StockInput) -> StockResult:
        raise NotImplementedError
