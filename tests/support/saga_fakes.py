"""Fake activities for the saga's workflow tests and for recording replay histories.

Each fake is declared under the real activity's name, so the workflow calls it
exactly as it calls the real one. Every completed call is appended to
``calls`` in the order the workflow made them (timeline lines go to
``events`` instead, so the step sequence stays readable). A test changes one
activity's behaviour with ``fakes.on(name, behaviour)``: the behaviour gets
the attempt number and may raise, sleep or wait on a gate.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import errors
from activities.inventory import StockInput, StockResult
from activities.notifications import NotifyInput, NotifyResult
from activities.orders import (
    AttentionCleared,
    AttentionInput,
    RecordOrderInput,
    ShipmentInput,
    StatusChange,
    TimelineEvent,
)
from activities.payments import ChargeInput, ChargeResult, RefundInput, RefundResult
from workflows import search_attributes
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CheckoutInput, CheckoutResult, workflow_id

Behaviour = Callable[[int], Awaitable[None]]


def refuse(kind: str, message: str = "refused") -> Behaviour:
    """Raise a business refusal (non-retryable) of the given type."""

    async def behaviour(attempt: int) -> None:
        raise ApplicationError(message, type=kind, non_retryable=True)

    return behaviour


def fail_times(times: int, kind: str = "Transient") -> Behaviour:
    """Fail the first ``times`` attempts with a retryable error, then succeed."""

    async def behaviour(attempt: int) -> None:
        if attempt <= times:
            raise ApplicationError(f"attempt {attempt} failed", type=kind)

    return behaviour


def fail_calls(times: int, kind: str = "Transient") -> Behaviour:
    """Fail the first ``times`` calls overall (across separate activity executions)."""
    seen = 0

    async def behaviour(attempt: int) -> None:
        nonlocal seen
        seen += 1
        if seen <= times:
            raise ApplicationError(f"call {seen} failed", type=kind)

    return behaviour


def always_fail(kind: str = errors.PROVIDER_UNAVAILABLE) -> Behaviour:
    async def behaviour(attempt: int) -> None:
        raise ApplicationError(f"attempt {attempt} failed", type=kind)

    return behaviour


def wait_for(gate: asyncio.Event, started: asyncio.Event | None = None) -> Behaviour:
    """Block until the test opens the gate (to send an update mid-step)."""

    async def behaviour(attempt: int) -> None:
        if started is not None:
            started.set()
        await gate.wait()

    return behaviour


class FakeActivities:
    """Stand-ins for every activity the workflow calls, with recorded calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list[str] = []
        self.attempts: dict[str, int] = {}
        self._behaviours: dict[str, Behaviour] = {}
        self._watchers: list[tuple[str, asyncio.Event]] = []

    def on(self, name: str, behaviour: Behaviour) -> FakeActivities:
        self._behaviours[name] = behaviour
        return self

    def called(self, call: str) -> asyncio.Event:
        """An event set once ``call`` has been recorded."""
        event = asyncio.Event()
        if call in self.calls:
            event.set()
        self._watchers.append((call, event))
        return event

    async def _run(self, name: str, call: str | None = None) -> None:
        attempt = activity.info().attempt
        self.attempts[name] = self.attempts.get(name, 0) + 1
        behaviour = self._behaviours.get(name)
        if behaviour is not None:
            await behaviour(attempt)
        recorded = call or name
        self.calls.append(recorded)
        for watched, event in self._watchers:
            if watched == recorded:
                event.set()

    # --- the fakes ------------------------------------------------------------

    @activity.defn(name="record_order")
    async def record_order(self, input: RecordOrderInput) -> None:
        await self._run("record_order")

    @activity.defn(name="set_order_status")
    async def set_status(self, input: StatusChange) -> None:
        await self._run("set_order_status", f"set_order_status:{input.status}")

    @activity.defn(name="record_timeline_event")
    async def record_event(self, input: TimelineEvent) -> None:
        self.events.append(f"{input.type}:{input.detail}")

    @activity.defn(name="flag_order_for_attention")
    async def flag_for_attention(self, input: AttentionInput) -> None:
        await self._run("flag_order_for_attention", f"flag_order_for_attention:{input.step}")

    @activity.defn(name="clear_order_attention")
    async def clear_attention(self, input: AttentionCleared) -> None:
        await self._run("clear_order_attention", f"clear_order_attention:{input.step}")

    @activity.defn(name="record_shipment")
    async def record_shipment(self, input: ShipmentInput) -> None:
        await self._run("record_shipment")

    @activity.defn(name="reserve_stock")
    async def reserve(self, input: StockInput) -> StockResult:
        await self._run("reserve_stock")
        return StockResult(input.order_id, 1)

    @activity.defn(name="release_stock")
    async def release(self, input: StockInput) -> StockResult:
        await self._run("release_stock")
        return StockResult(input.order_id, 1)

    @activity.defn(name="commit_stock")
    async def commit(self, input: StockInput) -> StockResult:
        await self._run("commit_stock")
        return StockResult(input.order_id, 1)

    @activity.defn(name="ship_order")
    async def ship(self, input: ShipmentInput) -> None:
        await self._run("ship_order")

    @activity.defn(name="charge_payment")
    async def charge(self, input: ChargeInput) -> ChargeResult:
        await self._run("charge_payment")
        return ChargeResult(input.order_id, "ch_fake", 4200)

    @activity.defn(name="refund_payment")
    async def refund(self, input: RefundInput) -> RefundResult:
        await self._run("refund_payment")
        return RefundResult(input.order_id, 4200)

    @activity.defn(name="send_notification")
    async def send(self, input: NotifyInput) -> NotifyResult:
        await self._run("send_notification", f"send_notification:{input.kind}")
        return NotifyResult(input.order_id, input.kind, True)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [
            self.record_order,
            self.set_status,
            self.record_event,
            self.flag_for_attention,
            self.clear_attention,
            self.record_shipment,
            self.reserve,
            self.release,
            self.commit,
            self.ship,
            self.charge,
            self.refund,
            self.send,
        ]


def checkout_input(**overrides: Any) -> CheckoutInput:
    values: dict[str, Any] = {
        "order_id": str(uuid.uuid4()),
        "customer_id": str(uuid.uuid4()),
        "total": 4200,
        "currency": "EUR",
        "payment_deadline_seconds": 60.0,
        "provider_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return CheckoutInput(**values)


async def start_order(
    client: Client, task_queue: str, input: CheckoutInput
) -> WorkflowHandle[OrderWorkflow, CheckoutResult]:
    """Start the saga the way the API does: its ID and the search attributes set."""
    await register_search_attributes(client)
    return await client.start_workflow(
        OrderWorkflow.run,
        input,
        id=workflow_id(input.order_id),
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(search_attributes.ORDER_STATUS, "pending"),
                SearchAttributePair(search_attributes.CUSTOMER_ID, input.customer_id),
                SearchAttributePair(search_attributes.ORDER_TOTAL, input.total / 100),
                SearchAttributePair(search_attributes.NEEDS_ATTENTION, False),
            ]
        ),
    )


_registered: set[int] = set()


async def register_search_attributes(client: Client) -> None:
    """Register the order search attributes once per server (the test server starts bare)."""
    if id(client) in _registered:
        return
    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={
            key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
            for key in search_attributes.ALL
        },
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    _registered.add(id(client))
