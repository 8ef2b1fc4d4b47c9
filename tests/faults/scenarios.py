"""The fault scenarios. Each drives real orders through the real stack, breaks a part,
and returns the violations it found (wrong end state, a second charge, an audit
finding): an empty list is a pass.

The pytest cases (``tests/faults/test_*.py``) run a few of each; the full
matrix (``python -m tests.faults.fault_matrix``) runs all of them, many times.
"""

from __future__ import annotations

import asyncio
import random
import uuid

from sqlalchemy import select
from temporalio.client import WorkflowUpdateStage

from activities.payment_simulator import PaymentSimulator
from core.models import OrderEvent, Product, Reservation
from tests.faults.processes import export_commit
from tests.faults.stack import PROVIDER_TIMEOUT, SHORT_PAYMENT_DEADLINE, FaultStack, Scenario
from tests.support.factories import create_user
from tests.support.polling import poll_until
from workflows.checkout import OrderWorkflow
from workflows.checkout_io import CancelRequest, workflow_id

# Fault points on the way to the pivot and the confirmation message: the
# orders must all end confirmed, charged once.
FORWARD_POINTS = [
    f"{step}:{when}"
    for step in (
        "reserve_stock",
        "charge_payment",
        "set_order_status:confirmed",
        "send_notification",
    )
    for when in ("before", "after")
] + [
    # Between the relay's accept and the row marked sent: the one place a
    # crash resends a message (counted by the audit, not a violation).
    "send_notification:accepted"
]
# Fault points on the compensation path. Release: a declined card (nothing
# charged, stock back). Refund: a cancel after confirmation (money back).
RELEASE_POINTS = ["release_stock:before", "release_stock:after"]
REFUND_POINTS = ["refund_payment:before", "refund_payment:after"]
ALL_POINTS = FORWARD_POINTS + RELEASE_POINTS + REFUND_POINTS


async def kill_worker_at(stack: FaultStack, point: str, *, orders: int = 2) -> list[str]:
    """SIGKILL the worker parked at ``point``; a fresh worker finishes every order."""
    if point in REFUND_POINTS:
        return await _kill_during_refund(stack, point, orders=orders)
    token, end = (
        ("tok_chargeDeclined", "payment_failed")
        if point in RELEASE_POINTS
        else (
            "tok_visa",
            "confirmed",
        )
    )
    async with stack.scenario() as sc:
        product = await sc.product(stock=orders)
        worker = sc.start_worker(point)
        ids = [await sc.place([(product, 1)], token=token) for _ in range(orders)]
        await sc.crash(worker)
        sc.start_worker()
        return await sc.check(dict.fromkeys(ids, end))


async def _kill_during_refund(stack: FaultStack, point: str, *, orders: int) -> list[str]:
    async with stack.scenario() as sc:
        product = await sc.product(stock=orders)
        first = sc.start_worker()
        ids = [await sc.place([(product, 1)]) for _ in range(orders)]
        problems = await sc.check(dict.fromkeys(ids, "confirmed"))
        first.stop()
        faulty = sc.start_worker(point)
        for order_id in ids:
            await _cancel(sc, order_id)
        await sc.crash(faulty)
        sc.start_worker()
        return problems + await sc.check(dict.fromkeys(ids, "cancelled"))


# The first workflow version: the commit before any workflow.patched change
# (before workflows.versions.CLEAR_ATTENTION_ON_RECOVERY). Its saga already
# compensated strictly in reverse, as the contract says and as today's does.
FIRST_VERSION = "f6bc330dfd7bd84006694dbe88e78ca3d652c022"

# The contract's compensation order: refund (or void), then release.
_REVERSE_UNDO = ["refund_payment", "release_stock"]


async def upgrade_workflow(stack: FaultStack, *, orders: int = 2) -> list[str]:
    """A deployment changes the workflow while orders are mid-compensation.

    Workers of the old version (the real source of that commit) confirm the
    orders, take the cancels, refund, and are SIGKILLed before releasing the
    stock. Workers of the new version replay those histories and finish them
    (release, charged once, audit clean); an order started on the new version
    compensates in the same reverse order.
    """
    old_tree = export_commit(FIRST_VERSION, stack.workdir / "old-version")
    async with stack.scenario() as sc:
        product = await sc.product(stock=orders + 1)
        old = sc.start_worker("release_stock:before", source=old_tree)
        started_old = [await sc.place([(product, 1)]) for _ in range(orders)]
        problems = await sc.check(dict.fromkeys(started_old, "confirmed"))
        for order_id in started_old:
            await _cancel(sc, order_id)
        await sc.crash(old)
        sc.start_worker()
        started_new = await sc.place([(product, 1)])
        # No audit yet: the old orders are mid-compensation (refunded, still
        # confirmed), which only the end state may be judged on.
        await sc.settled({started_new: {"confirmed"}})
        await _cancel(sc, started_new)
        problems += await sc.check(dict.fromkeys([*started_old, started_new], "cancelled"))
        wrong_order: list[str] = []
        for order_id, version in [*((o, "old") for o in started_old), (started_new, "new")]:
            undo = await _compensations_started(sc, order_id)
            if undo != _REVERSE_UNDO:
                wrong_order.append(
                    f"order {order_id} ({version} version) compensated as {undo}, "
                    f"not {_REVERSE_UNDO}"
                )
        stack.counters.violations += wrong_order
        return problems + wrong_order


async def _cancel(sc: Scenario, order_id: str) -> None:
    handle = sc.stack.temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id(order_id))
    # Accepted is enough: the compensation then runs on whichever worker polls.
    await handle.start_update(
        OrderWorkflow.cancel,
        CancelRequest("changed my mind", str(sc.customer.id)),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )


async def _compensations_started(sc: Scenario, order_id: str) -> list[str]:
    async with sc.sessions() as session:
        steps = await session.scalars(
            select(OrderEvent.detail)
            .where(
                OrderEvent.order_id == uuid.UUID(order_id),
                OrderEvent.type == "compensation.started",
            )
            .order_by(OrderEvent.at, OrderEvent.id)
        )
        return list(steps)


async def restart_temporal(stack: FaultStack, *, orders: int = 6) -> list[str]:
    """The dev server dies (SIGKILL) mid-batch and comes back on the same SQLite file."""
    async with stack.scenario() as sc:
        product = await sc.product()
        sc.start_worker()
        ids = [await sc.place([(product, 1)]) for _ in range(orders // 2)]
        await stack.temporal_server.restart(kill=True)
        stack.counters.crashes += 1
        ids += [await sc.place([(product, 1)]) for _ in range(orders - orders // 2)]
        return await sc.check(dict.fromkeys(ids, "confirmed"))


async def stop_postgres(
    stack: FaultStack, *, orders: int = 8, down_seconds: float = 3.0
) -> list[str]:
    """PostgreSQL goes away while activities run; they retry and every order completes."""
    async with stack.scenario() as sc:
        product = await sc.product()
        ids = [await sc.place([(product, 1)]) for _ in range(orders)]
        sc.start_worker()
        await _until_some_stock_is_reserved(sc)
        await asyncio.to_thread(stack.postgres.stop)
        stack.counters.crashes += 1
        try:
            await asyncio.sleep(down_seconds)
        finally:
            await asyncio.to_thread(stack.postgres.start)
        problems = await sc.check(dict.fromkeys(ids, "confirmed"))
        # Proof the fault was real: some activity attempt failed (on the
        # database, the only thing broken) and was retried to success.
        failed = [await worker.failed_attempts() for worker in sc.workers]
        if not any(failed):
            problems.append("no activity attempt hit the database outage")
        return problems


async def _until_some_stock_is_reserved(sc: Scenario) -> None:
    async def reserved() -> bool:
        async with sc.sessions() as session:
            return await session.scalar(select(Reservation.order_id).limit(1)) is not None

    # The worker process has to start first: a generous bound.
    await poll_until(reserved, "an order reaching the reservation", timeout=120, interval=0.02)


async def payment_trouble(
    stack: FaultStack, *, outage_seconds: float = 3.0, orders_per_token: int = 2
) -> list[str]:
    """A provider-wide outage plus flaky, hanging and declining cards.

    Each order completes or fails as payment_failed with its stock back and its
    money refunded: never two captures, never money kept on a failed order.
    A good card (tok_visa) must be *confirmed* when the outage ends well
    inside the payment deadline: its charge is retried through the outage,
    so a regression that stopped charges retrying fails here.
    """
    simulator = PaymentSimulator(stack.sessions, timeout_seconds=PROVIDER_TIMEOUT)
    async with stack.scenario(payment_deadline=SHORT_PAYMENT_DEADLINE) as sc:
        product = await sc.product()
        await simulator.set_outage(True)
        stack.counters.crashes += 1
        try:
            sc.start_worker()
            expected: dict[str, str | set[str]] = {}
            either = {"confirmed", "payment_failed"}
            for token, end in (
                ("tok_visa", _good_card_end(outage_seconds, SHORT_PAYMENT_DEADLINE)),
                # tok_flaky fails twice more *after* the outage, and those
                # retries may take it past the deadline: either end is right.
                ("tok_flaky", either),
                ("tok_timeout", "payment_failed"),
                ("tok_chargeDeclined", "payment_failed"),
            ):
                for _ in range(orders_per_token):
                    expected[await sc.place([(product, 1)], token=token)] = end
            await asyncio.sleep(outage_seconds)
        finally:
            await simulator.set_outage(False)
        return await sc.check(expected)


def _good_card_end(outage_seconds: float, deadline_seconds: float) -> str | set[str]:
    """What a tok_visa order placed during an outage must end as.

    The charge retries at 0, 1, 3, 7... s (workflows/retry_policies.PAYMENT:
    1 s doubling), so the first attempt after an outage of L seconds comes
    at most 2L + 1 s after the first one. When that is inside the deadline
    the order must be confirmed; otherwise it may fail as payment_failed.
    """
    if 2 * outage_seconds + 1 < deadline_seconds:
        return "confirmed"
    return {"confirmed", "payment_failed"}


async def race_for_last_units(
    stack: FaultStack, *, products: int = 3, stock: int = 3, buyers: int = 7, seed: int = 0
) -> list[str]:
    """Many customers, two workers, a few last units: no oversell, no negative stock."""
    rng = random.Random(seed)
    async with stack.scenario() as sc:
        items = [await sc.product(stock=stock) for _ in range(products)]
        customers = [await create_user(sc.sessions) for _ in range(buyers)]
        sc.start_worker()
        sc.start_worker()
        wanted = [(product, customer) for product in items for customer in customers]
        rng.shuffle(wanted)
        ids = await asyncio.gather(
            *(sc.place([(product, 1)], user=customer) for product, customer in wanted)
        )
        by_product = {
            order_id: product.id for order_id, (product, _) in zip(ids, wanted, strict=True)
        }
        problems = await sc.check({order_id: {"confirmed", "rejected"} for order_id in ids})
        oversold: list[str] = []
        statuses = await sc.statuses(ids)
        async with sc.sessions() as session:
            rows = await session.execute(select(Product.id, Product.stock))
            left = {row.id: row.stock for row in rows}
        for product in items:
            sold = sum(
                1
                for order_id, status in statuses.items()
                if status == "confirmed" and by_product[order_id] == product.id
            )
            if sold != min(stock, buyers) or left[product.id] != stock - sold:
                oversold.append(
                    f"product {product.sku}: {sold} confirmed, {left[product.id]} left of {stock}"
                )
        stack.counters.violations += oversold
        problems += oversold
        return problems
