"""``ordersaga bench``: start the stacks, run every phase, check the books, report.

The run, in order (each phase measured alone on the machine):

1. PostgreSQL (one server; a database per stack).
2. The main stack: SMTP sink, the Temporal dev server with the stack's
   tuning, the bench worker (product worker + ceilings), the bench API
   (product app + ceilings' endpoints). A shop: products, customers.
3. Warm-up of every variant (not measured), then the saga closed loop at C,
   the saga open loop at R, the saga at concurrency 1, and ceilings (a), (b),
   (c) at C and at 1. The books and the audit of the main database.
4. The main stack stops; the naive stack starts: SMTP sink, a dev server
   with default settings, the naive worker, ``ordersaga api``. Warm-up, (d)
   at C and at 1, the books and the audit of its database.
5. Everything stops (also on Ctrl-C or an error); the report is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.bench import driver, report
from core.bench.books import Books, check_books, summarize
from core.bench.ceilings import CEILING_TASK_QUEUE
from core.bench.driver import Outcome, Progress, Send
from core.bench.machine import Machine, describe_machine
from core.bench.processes import (
    BenchError,
    Postgres,
    Processes,
    child_env,
    create_database,
    free_port,
    python_module,
    start_postgres,
    temporal_argv,
    wait_for_api,
    wait_for_pollers,
    wait_for_port,
    wait_for_temporal,
)
from core.bench.report import CLOSED, OPEN, BenchReport, PhaseResult, Variant
from core.bench.sampling import Mark, ProcessTree, Sampler
from core.bench.shop import Shop, open_shop
from core.bench.stats import Latency, rate
from core.db import SessionFactory, create_engine, create_session_factory
from core.settings import Settings

MAX_ERRORS_KEPT = 5
PAUSE_BETWEEN_PHASES = 0.5  # seconds: let the previous phase's tail settle


@dataclass(frozen=True)
class BenchConfig:
    """How much load; the defaults keep a full run under ten minutes on two cores."""

    orders: int = 400  # per variant, closed loop at `concurrency`
    concurrency: int = 16
    single_orders: int = 30  # per variant, closed loop at concurrency 1
    rate: float | None = None  # open loop; None: 70 % of the saga's closed-loop throughput
    open_seconds: float = 20.0
    # An open-loop saga must complete within this after the last send for the
    # stack to count as keeping up.
    open_grace_seconds: float = 10.0
    warmup: int = 10  # per variant, not measured
    customers: int = 8
    products: int = 16
    stock: int = 1_000_000  # per product: never the limit
    # How long to wait for a phase's sagas before calling them not completed.
    grace_seconds: float = 60.0
    quick: bool = False


# Small, for the smoke test in `make test`: everything runs, but briefly.
QUICK = BenchConfig(
    orders=20,
    concurrency=4,
    single_orders=5,
    open_seconds=3.0,
    warmup=2,
    customers=2,
    products=4,
    quick=True,
)


def signing_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Stack:
    """One running stack as the bench sees it: its database, Temporal, API and orders."""

    name: str
    processes: Processes
    engine: AsyncEngine
    sessions: SessionFactory
    api: httpx.AsyncClient
    temporal: Client | None = None
    shop: Shop | None = None
    order_ids: list[str] = field(default_factory=list)

    async def close(self) -> None:
        await self.api.aclose()
        await self.processes.stop_all()
        await self.engine.dispose()


class BenchRun:
    def __init__(
        self, config: BenchConfig, settings: Settings, data_dir: Path, progress: Progress
    ) -> None:
        self.config = config
        self.settings = settings
        self.data_dir = data_dir
        self.progress = progress
        self.sampler = Sampler()
        self.phases: list[PhaseResult] = []
        self.books: list[Books] = []
        self._key = signing_key_pem()
        self._postgres: Postgres | None = None
        self._stacks: list[Stack] = []

    # --- the run ------------------------------------------------------------

    async def run(self) -> BenchReport:
        started = time.monotonic()
        machine = await asyncio.to_thread(describe_machine)
        self.sampler.add(ProcessTree("driver", os.getpid(), recursive=False))
        self.sampler.start()
        try:
            self.progress.note(f"starting PostgreSQL in {self.data_dir}")
            self._postgres = await start_postgres(self.data_dir / "pg")
            self.sampler.add(ProcessTree("postgres", self._postgres.pid))

            main = await self._start_stack("main", database="postgres", naive=False)
            await self._measure_main(main)
            self.books.append(await self._check(main))
            await self._stop_stack(main)

            naive = await self._start_stack("naive", database="naive", naive=True)
            await self._measure_naive(naive)
            self.books.append(await self._check(naive))
            await self._stop_stack(naive)
        finally:
            await self._teardown()
        return self._report(machine, time.monotonic() - started)

    async def _measure_main(self, stack: Stack) -> None:
        c = self.config
        shop = await self._open_shop(stack)
        saga = driver.checkout(stack.api, shop, wait=True)
        ceilings: list[tuple[Variant, Send]] = [
            (report.EMPTY, driver.workflow_ceiling(stack.api, shop, "/bench/empty-workflow")),
            (report.NOOP, driver.workflow_ceiling(stack.api, shop, "/bench/noop-saga")),
            (report.FLOOR, driver.floor(stack.api, shop)),
        ]
        await self._warm_up(stack, report.SAGA, saga, sagas=True)
        for variant, send in ceilings:
            await self._warm_up(stack, variant, send, sagas=False)

        loaded = await self._closed(stack, report.SAGA, saga, c.orders, c.concurrency, sagas=True)
        open_rate = c.rate or report.OPEN_LOOP_SHARE * loaded.throughput
        await self._open(stack, driver.checkout(stack.api, shop, wait=False), open_rate)
        await self._closed(stack, report.SAGA, saga, c.single_orders, 1, sagas=True)
        # The ceilings answer when their work is done: nothing to wait for after.
        for variant, send in ceilings:
            await self._closed(stack, variant, send, c.orders, c.concurrency, sagas=False)
            await self._closed(stack, variant, send, c.single_orders, 1, sagas=False)

    async def _measure_naive(self, stack: Stack) -> None:
        c = self.config
        shop = await self._open_shop(stack)
        naive = driver.checkout(stack.api, shop, wait=True)
        await self._warm_up(stack, report.NAIVE, naive, sagas=True)
        await self._closed(stack, report.NAIVE, naive, c.orders, c.concurrency, sagas=True)
        await self._closed(stack, report.NAIVE, naive, c.single_orders, 1, sagas=True)

    # --- stacks -------------------------------------------------------------

    async def _start_stack(self, name: str, *, database: str, naive: bool) -> Stack:
        assert self._postgres is not None
        self.progress.note(f"starting the {name} stack")
        url = await create_database(self._postgres, database)
        processes = Processes(self.data_dir / "logs" / name)
        temporal_port, api_port, smtp_port = free_port(), free_port(), free_port()
        address = f"127.0.0.1:{temporal_port}"
        task_queue = self.settings.task_queue
        env = child_env(
            data_dir=self.data_dir / name,
            database_url=url,
            temporal_address=address,
            smtp_port=smtp_port,
            signing_key_pem=self._key,
        )
        env["ORDERSAGA_TASK_QUEUE"] = task_queue
        engine = create_engine(url, pool_size=4)
        api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_port}",
            timeout=driver.WAIT_SECONDS * 2,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )
        # Registered before anything can fail, so the teardown finds it.
        stack = Stack(name, processes, engine, create_session_factory(engine), api)
        self._stacks.append(stack)
        processes.start("smtp", python_module("core.bench.smtp", "--port", str(smtp_port)), env)
        # The naive stack runs the dev server as it comes: no tuning, no pragmas.
        db_file = self.data_dir / f"temporal-{name}.db"
        processes.start(
            "temporal", temporal_argv(port=temporal_port, db_file=db_file, tuned=not naive), env
        )
        stack.temporal = temporal = await wait_for_temporal(processes, address)
        if naive:
            processes.start("worker", python_module("core.bench.worker", "--naive"), env)
            api_argv = python_module("core.cli", "api", "--port", str(api_port))
        else:
            processes.start("worker", python_module("core.bench.worker"), env)
            api_argv = python_module("core.bench.server", "--port", str(api_port))
        processes.start("api", api_argv, env)
        await wait_for_port(processes, smtp_port)
        await wait_for_pollers(processes, temporal, task_queue)
        if not naive:
            await wait_for_pollers(processes, temporal, CEILING_TASK_QUEUE)
        await wait_for_api(processes, str(api.base_url).rstrip("/"))
        for child in processes.children:
            self.sampler.add(ProcessTree(child.name, child.process.pid))
        return stack

    async def _stop_stack(self, stack: Stack) -> None:
        for child in stack.processes.children:
            self.sampler.remove(child.name)
        self._stacks.remove(stack)
        await stack.close()

    async def _teardown(self) -> None:
        """Stop whatever still runs; each step even if another failed."""
        for stack in reversed(self._stacks):
            with contextlib.suppress(Exception):
                await stack.close()
        self._stacks.clear()
        self.sampler.stop()
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)
            self._postgres = None

    async def _open_shop(self, stack: Stack) -> Shop:
        c = self.config
        stack.shop = await open_shop(
            stack.api, stack.sessions, customers=c.customers, products=c.products, stock=c.stock
        )
        return stack.shop

    async def _check(self, stack: Stack) -> Books:
        assert stack.shop is not None
        self.progress.note(f"checking the books of the {stack.name} stack")
        return await check_books(
            stack.name,
            stack.sessions,
            order_ids=stack.order_ids,
            initial_stock={p.id: p.stock for p in stack.shop.products},
            temporal=stack.temporal,
        )

    # --- phases -------------------------------------------------------------

    async def _warm_up(self, stack: Stack, variant: Variant, send: Send, *, sagas: bool) -> None:
        """Unmeasured requests first: connection pools, caches and imports fill up."""
        n = self.config.warmup
        if n <= 0:
            return
        self.progress.start(f"warm-up {variant.label}", n)
        outcomes = await driver.closed_loop(n, min(4, self.config.concurrency), send, self.progress)
        stack.order_ids += [o.order_id for o in outcomes if o.order_id]
        if sagas:
            ids = [o.order_id for o in outcomes if o.ok and o.order_id]
            await driver.wait_for_sagas(stack.sessions, ids, self.config.grace_seconds)
        self.progress.finish(f"{sum(o.ok for o in outcomes)}/{n} ok")

    async def _closed(
        self, stack: Stack, variant: Variant, send: Send, n: int, concurrency: int, *, sagas: bool
    ) -> PhaseResult:
        await asyncio.sleep(PAUSE_BETWEEN_PHASES)
        self.progress.start(f"{variant.label} @{concurrency}", n)
        clock = _Clock.now()
        mark = self.sampler.begin()
        outcomes = await driver.closed_loop(n, concurrency, send, self.progress)
        return await self._finish(
            stack, variant, CLOSED, concurrency, n, outcomes, clock, mark, sagas=sagas
        )

    async def _open(self, stack: Stack, send: Send, target_rate: float) -> PhaseResult:
        c = self.config
        await asyncio.sleep(PAUSE_BETWEEN_PHASES)
        target_rate = max(target_rate, 0.1)
        n = max(1, round(target_rate * c.open_seconds))
        self.progress.start(f"saga open loop {target_rate:.1f}/s", n)
        clock = _Clock.now()
        mark = self.sampler.begin()
        run = await driver.open_loop(target_rate, c.open_seconds, send, self.progress)
        ids = [o.order_id for o in run.outcomes if o.ok and o.order_id]
        in_time = await driver.wait_for_sagas(stack.sessions, ids, c.open_grace_seconds)
        kept_up = len(in_time) == len(ids) == n
        return await self._finish(
            stack,
            report.SAGA,
            OPEN,
            0,
            n,
            run.outcomes,
            clock,
            mark,
            sagas=True,
            target_rate=target_rate,
            kept_up=kept_up,
            max_send_lag_ms=run.max_send_lag * 1000,
        )

    async def _finish(
        self,
        stack: Stack,
        variant: Variant,
        kind: str,
        concurrency: int,
        requested: int,
        outcomes: list[Outcome],
        clock: _Clock,
        mark: Mark,
        *,
        sagas: bool,
        target_rate: float | None = None,
        kept_up: bool | None = None,
        max_send_lag_ms: float | None = None,
    ) -> PhaseResult:
        stack.order_ids += [o.order_id for o in outcomes if o.order_id]
        ok = [o for o in outcomes if o.ok]
        first_sent = min((o.sent_at for o in outcomes), default=clock.loop)
        last_done = max((o.done_at for o in ok), default=first_sent)
        if sagas:
            # Completed = confirmed and its mail sent, read where the saga wrote it.
            ids = [o.order_id for o in ok if o.order_id]
            done = await driver.wait_for_sagas(stack.sessions, ids, self.config.grace_seconds)
            completed = len(done)
            if done:
                last_mail = clock.to_loop(max(done.values()).timestamp())
                last_done = max(last_done, last_mail)
        else:
            completed = len(ok)
        measured = self.sampler.end(mark)
        seconds = last_done - first_sent
        phase = PhaseResult(
            variant=variant.key,
            kind=kind,
            concurrency=concurrency,
            requested=requested,
            completed=completed,
            seconds=seconds,
            throughput=rate(completed, seconds),
            latency=Latency.of([o.latency for o in ok]),
            usage=measured.processes,
            other_cpu_seconds=measured.other_cpu_seconds,
            errors=[o.error for o in outcomes if o.error][:MAX_ERRORS_KEPT],
            target_rate=target_rate,
            kept_up=kept_up,
            max_send_lag_ms=max_send_lag_ms,
        )
        self.phases.append(phase)
        self.progress.finish(
            f"{completed}/{requested} done, {phase.throughput:.1f}/s, "
            f"p50 {phase.latency.p50_ms:.0f} ms, p99 {phase.latency.p99_ms:.0f} ms"
        )
        return phase

    # --- the report -----------------------------------------------------------

    def _report(self, machine: Machine, seconds: float) -> BenchReport:
        rows = report.build_rows(self.phases)
        open_loop = next((p for p in self.phases if p.kind == OPEN), None)
        main_worker = max(
            (
                p.usage["worker"].peak_rss_mib
                for p in self.phases
                if p.variant != report.NAIVE.key and "worker" in p.usage
            ),
            default=float("nan"),
        )
        problems: list[str] = []
        for phase in self.phases:
            if phase.completed != phase.requested:
                label = f"{phase.variant} {phase.kind} @{phase.concurrency or 'rate'}"
                errors = "; ".join(phase.errors[:2]) or "not completed in time"
                problems.append(
                    f"{label}: {phase.completed}/{phase.requested} completed ({errors})"
                )
        for books in self.books:
            problems += summarize(books)
        config = asdict(self.config)
        return BenchReport(
            config=config,
            machine=machine,
            seconds=seconds,
            phases=self.phases,
            rows=rows,
            ratios=report.build_ratios(rows),
            targets=report.evaluate_targets(rows, open_loop, main_worker),
            books=self.books,
            problems=problems,
        )


@dataclass(frozen=True)
class _Clock:
    """The event loop's clock and the wall clock read together, to convert between them.

    Requests are timed on the loop's monotonic clock; the saga's completion
    is a timestamp written by PostgreSQL on the same machine's wall clock.
    """

    loop: float
    wall: float

    @classmethod
    def now(cls) -> _Clock:
        return cls(asyncio.get_running_loop().time(), time.time())

    def to_loop(self, wall: float) -> float:
        return self.loop + (wall - self.wall)


# --- entry point ------------------------------------------------------------------


def prepare_data_dir(data_dir: Path | None) -> tuple[Path, bool]:
    """The run's directory, and whether it is a temporary one the bench owns."""
    if data_dir is None:
        # Short: PostgreSQL's unix socket path lives inside it.
        return Path(tempfile.mkdtemp(prefix="ordersaga-bench-")), True
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BenchError(
            f"{data_dir} is not empty; give the bench a new or empty --data-dir", exit_code=2
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, False


async def _run_until_interrupted(
    work: Callable[[], Awaitable[BenchReport]], progress: Progress
) -> BenchReport:
    """Run ``work``; Ctrl-C or SIGTERM cancels it (its teardown still runs).

    Raises KeyboardInterrupt once it is cancelled, so the CLI exits with 130.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work())
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            progress.note("interrupted: stopping the stack (this takes a few seconds)")
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_bench(
    config: BenchConfig, settings: Settings, *, data_dir: Path | None, out: Path | None
) -> tuple[BenchReport, Path]:
    """Run the whole bench; the report and where its JSON was written.

    Raises BenchError when the stack cannot run, KeyboardInterrupt on Ctrl-C.
    """
    directory, temporary = prepare_data_dir(data_dir)
    out = out or (Path.cwd() if temporary else directory) / "bench-results.json"
    progress = Progress()
    # A temporary directory is removed unless the run failed: then its logs
    # are what tells why.
    keep = True
    try:
        bench = BenchRun(config, settings, directory, progress)
        result = asyncio.run(_run_until_interrupted(bench.run, progress))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        keep = not result.ok
        return result, out
    except KeyboardInterrupt:
        keep = False
        raise
    finally:
        if temporary and not keep:
            shutil.rmtree(directory, ignore_errors=True)
        elif temporary:
            progress.note(f"kept {directory} for its logs ({directory / 'logs'})")
