"""Order read-model activities: status, timeline and attention flags.

CONTRACT SKELETON: signatures are the interface the workflow codes against.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from core.db import SessionFactory


@dataclass
class RecordOrderInput:
    order_id: str


@dataclass
class StatusChange:
    order_id: str
    status: str  # an OrderStatus value
    failure_reason: str | None = None
    detail: str = ""  # timeline text


@dataclass
class TimelineEvent:
    order_id: str
    type: str  # e.g. "compensation.started", "payment.retry"
    detail: str = ""
    # A stable key per logical event, so a retried activity does not repeat it.
    dedupe_key: str | None = None


@dataclass
class AttentionInput:
    order_id: str
    step: str  # the compensation that keeps failing
    error: str


@dataclass
class ShipmentInput:
    order_id: str
    carrier: str | None = None
    tracking_number: str | None = None


class OrderActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="record_order")
    async def record_order(self, input: RecordOrderInput) -> None:
        raise NotImplementedError

    @activity.defn(name="set_order_status")
    async def set_status(self, input: StatusChange) -> None:
        raise NotImplementedError

    @activity.defn(name="record_timeline_event")
    async def record_event(self, input: TimelineEvent) -> None:
        raise NotImplementedError

    @activity.defn(name="flag_order_for_attention")
    async def flag_for_attention(self, input: AttentionInput) -> None:
        raise NotImplementedError

    @activity.defn(name="record_shipment")
    async def record_shipment(self, input: ShipmentInput) -> None:
        raise NotImplementedError
