"""The load: closed and open loops over HTTP, and waiting for sagas to complete.

- A **closed loop** keeps ``concurrency`` requests in flight: each client
  sends its next request when the previous one answered, so latency is what
  each request took under that much load.
- An **open loop** sends at fixed times (``rate`` per second), each request
  its own task, so a slow answer never delays the next send; latency is then
  what a customer would see at that arrival rate.

A saga is *completed* when its order is ``confirmed`` and the confirmation
mail has been sent (its ``notifications`` row is ``sent``), so the waiting
is done in the database, where the saga's activities write.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import httpx
from sqlalchemy import select
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from activities.messages import NotificationKind
from core.db import SessionFactory
from core.models import Notification, NotificationStatus, Order, OrderStatus
from tooling.bench.ceilings import CEILING_TASK_QUEUE, LocalNoopWorkflow
from tooling.bench.shop import Shop

# POST /orders with `Prefer: wait=N` answers once the order left pending, or
# after N seconds (the API's maximum) with 202 and the order still pending.
WAIT_SECONDS = 30
COMPLETION_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Outcome:
    """One request: when it was sent (event-loop clock), how long it took, what it made."""

    ok: bool
    sent_at: float
    latency: float  # seconds
    order_id: str | None = None
    error: str | None = None

    @property
    def done_at(self) -> float:
        return self.sent_at + self.latency


Send = Callable[[int], Coroutine[Any, Any, Outcome]]


def _problem(response: httpx.Response) -> str:
    # The API answers errors as problem documents; they hold no secrets.
    return f"HTTP {response.status_code}: {response.text[:200]}"


# Judges an answer: (ok, the order id it names, if any).
Judge = Callable[[httpx.Response], tuple[bool, str | None]]


async def _post(
    api: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    judge: Judge,
) -> Outcome:
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    try:
        response = await api.post(path, json=body, headers=headers)
    except httpx.HTTPError as err:
        return Outcome(False, sent_at, loop.time() - sent_at, error=type(err).__name__)
    latency = loop.time() - sent_at
    ok, order_id = judge(response)
    # A failed answer may still name an order (a checkout still pending after
    # the wait): the books must account for it too.
    return Outcome(ok, sent_at, latency, order_id, None if ok else _problem(response))


def _order_id(response: httpx.Response) -> str | None:
    if response.status_code >= 300:
        return None
    found = response.json().get("id")
    return str(found) if found is not None else None


def checkout(api: httpx.AsyncClient, shop: Shop, *, wait: bool) -> Send:
    """``POST /orders``; with ``wait``, successful only once the order is confirmed."""

    def judge(response: httpx.Response) -> tuple[bool, str | None]:
        order_id = _order_id(response)
        if wait:
            settled = response.status_code == 200
            ok = settled and response.json()["status"] == OrderStatus.CONFIRMED
            return ok, order_id
        return response.status_code == 202, order_id

    async def send(i: int) -> Outcome:
        headers = {**shop.headers(i), "Idempotency-Key": str(uuid.uuid4())}
        if wait:
            headers["Prefer"] = f"wait={WAIT_SECONDS}"
        return await _post(api, "/orders", headers=headers, body=shop.order_body(i), judge=judge)

    return send


def workflow_ceiling(api: httpx.AsyncClient, shop: Shop, path: str) -> Send:
    """A bench endpoint that answers 200 once its work is done (a workflow completed)."""

    def judge(response: httpx.Response) -> tuple[bool, str | None]:
        return response.status_code == 200, None

    async def send(i: int) -> Outcome:
        return await _post(api, path, headers=shop.headers(i), body=None, judge=judge)

    return send


def in_process(client: Client) -> Send:
    """Ceiling (f): start ``LocalNoopWorkflow`` through a Temporal client and await it, no HTTP."""

    async def send(i: int) -> Outcome:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        order_id = str(uuid.uuid4())
        try:
            await client.execute_workflow(
                LocalNoopWorkflow.run,
                order_id,
                id=f"bench-local-noop-{order_id}",
                task_queue=CEILING_TASK_QUEUE,
            )
        except (WorkflowFailureError, RPCError) as err:
            return Outcome(False, sent_at, loop.time() - sent_at, error=type(err).__name__)
        return Outcome(True, sent_at, loop.time() - sent_at)

    return send


def floor(api: httpx.AsyncClient, shop: Shop) -> Send:
    """Ceiling (c): the order's writes in one transaction, answered once committed."""

    def judge(response: httpx.Response) -> tuple[bool, str | None]:
        return response.status_code == 200, _order_id(response)

    async def send(i: int) -> Outcome:
        headers = {**shop.headers(i), "Idempotency-Key": str(uuid.uuid4())}
        return await _post(
            api, "/bench/one-transaction", headers=headers, body=shop.order_body(i), judge=judge
        )

    return send


async def closed_loop(n: int, concurrency: int, send: Send, progress: Progress) -> list[Outcome]:
    """``n`` requests, ``concurrency`` at a time."""
    outcomes: list[Outcome] = []
    numbers = itertools.count()

    async def client() -> None:
        while (i := next(numbers)) < n:
            outcomes.append(await send(i))
            progress.advance()

    await asyncio.gather(*(client() for _ in range(max(1, min(concurrency, n)))))
    return outcomes


@dataclass(frozen=True)
class OpenLoopRun:
    outcomes: list[Outcome]
    # How late the latest send left against its schedule: a load generator
    # that cannot keep its own schedule would understate the load.
    max_send_lag: float


async def open_loop(rate: float, seconds: float, send: Send, progress: Progress) -> OpenLoopRun:
    """``rate`` requests per second for ``seconds``, each sent on schedule as its own task."""
    loop = asyncio.get_running_loop()
    n = max(1, round(rate * seconds))
    start = loop.time()
    tasks: list[asyncio.Task[Outcome]] = []
    lag = 0.0
    for i in range(n):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        lag = max(lag, loop.time() - due)
        tasks.append(asyncio.create_task(send(i)))
        progress.advance()
    return OpenLoopRun(list(await asyncio.gather(*tasks)), lag)


async def wait_for_sagas(
    sessions: SessionFactory, order_ids: Collection[str], timeout: float
) -> dict[str, datetime]:
    """When each saga completed (its confirmation mail was marked sent), waiting up to ``timeout``.

    Orders missing from the answer did not complete in time.
    """
    ids = [uuid.UUID(i) for i in order_ids]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    done: dict[str, datetime] = {}
    while True:
        async with sessions() as session:
            rows = await session.execute(
                select(Order.id, Notification.sent_at)
                .join(Notification, Notification.order_id == Order.id)
                .where(
                    Order.id.in_(ids),
                    Order.status == OrderStatus.CONFIRMED,
                    Notification.kind == NotificationKind.CONFIRMED.value,
                    Notification.channel == "email",
                    Notification.status == NotificationStatus.SENT,
                )
            )
            done = {str(order_id): sent_at for order_id, sent_at in rows if sent_at is not None}
        if len(done) == len(ids) or loop.time() > deadline:
            return done
        await asyncio.sleep(COMPLETION_POLL_SECONDS)


class Progress:
    """A one-line progress bar on stderr, redrawn in place on a terminal.

    Elsewhere (a pipe, a test's captured output) it writes one line per phase.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._width = width
        self._label = ""
        self._total = 0
        self._done = 0
        self._drawn_at = 0.0

    def note(self, text: str) -> None:
        self._stream.write(f"ordersaga bench: {text}\n")
        self._stream.flush()

    def start(self, label: str, total: int) -> None:
        self._label, self._total, self._done, self._drawn_at = label, total, 0, 0.0
        self._draw(force=True)

    def advance(self) -> None:
        self._done += 1
        self._draw()

    def finish(self, summary: str) -> None:
        if self._tty:
            self._stream.write(f"\r{self._bar()}  {summary}\033[K\n")
        else:
            self._stream.write(f"ordersaga bench: {self._label}: {summary}\n")
        self._stream.flush()

    def _bar(self) -> str:
        filled = self._width * self._done // max(1, self._total)
        bar = "#" * filled + "." * (self._width - filled)
        return f"  {self._label:<24} [{bar}] {self._done}/{self._total}"

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        # At most ten redraws a second: the bar must not cost the load generator.
        if not self._tty or (not force and now - self._drawn_at < 0.1):
            return
        self._drawn_at = now
        self._stream.write(f"\r{self._bar()}\033[K")
        self._stream.flush()
