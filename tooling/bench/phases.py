"""The bench run: start the stacks, run every phase, check the books, build the report.

The run, in order (each phase measured alone on the machine):

1. PostgreSQL (one server; a database per stack).
2. The main stack: SMTP sink, the Temporal dev server with the stack's
   tuning, the bench worker (product worker + ceilings), the bench API
   (product app + ceilings' endpoints). A shop: products, customers.
3. Warm-up of every variant (not measured), then the saga closed loop at C,
   the saga open loop at R, the saga at concurrency 1, and ceilings (a), (b),
   (c), (e) and (f) at C and at 1. The books and the audit of the main
   database. With ``--profile``, py-spy samples the API and the worker
   during the saga's closed loop at C.
4. The main stack stops; the naive stack starts: SMTP sink, a dev server
   with default settings, the naive worker, ``ordersaga api``. Warm-up, (d)
   at C and at 1, the books and the audit of its database.
5. Everything stops (also on Ctrl-C or an error); the report is built.

Every phase also counts the PostgreSQL statements of the API and of the
worker (``tooling.bench.statements``): reset when it begins, read when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from api.keys import generate_private_key_pem
from core.settings import Settings
from tooling.bench import driver, results, targets
from tooling.bench.actions import HistoryCost, checkout_cost
from tooling.bench.books import Books, check_books
from tooling.bench.config import BenchConfig
from tooling.bench.driver import Outcome, Progress, Send
from tooling.bench.machine import compile_project_sources, describe_machine
from tooling.bench.processes import Postgres, start_postgres
from tooling.bench.profiling import (
    SUMMARY,
    ProfileFiles,
    Recording,
    start_recording,
    write_summary,
)
from tooling.bench.report import BenchReport, build_report
from tooling.bench.results import CLOSED, OPEN, PhaseResult, Variant
from tooling.bench.sampling import Mark, ProcessTree, Sampler
from tooling.bench.shop import Shop, open_shop
from tooling.bench.stack import Stack, start_stack
from tooling.bench.statements import read_statements, reset_statements
from tooling.bench.stats import Clock, Latency, rate

MAX_ERRORS_KEPT = 5
PAUSE_BETWEEN_PHASES = 0.5  # seconds: let the previous phase's tail settle
# The processes --profile samples, as the stack names them.
PROFILED = ("api", "worker")


@dataclass(frozen=True)
class Profiling:
    """``--profile``: the py-spy to run and where its files go."""

    py_spy: Path
    directory: Path


@dataclass(frozen=True)
class _Begun:
    """What a phase's measurement started from."""

    clock: Clock
    mark: Mark
    recording: Recording | None = None


class BenchRun:
    def __init__(
        self,
        config: BenchConfig,
        settings: Settings,
        data_dir: Path,
        progress: Progress,
        *,
        profiling: Profiling | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.data_dir = data_dir
        self.progress = progress
        self.profiling = profiling
        self.sampler = Sampler()
        self.phases: list[PhaseResult] = []
        self.books: list[Books] = []
        self.temporal_cost: HistoryCost | None = None
        self.profile: ProfileFiles | None = None  # what --profile wrote
        # A fresh key for the run: it signs every token of it, and nothing else.
        self._key = generate_private_key_pem()
        self._postgres: Postgres | None = None
        self._stacks: list[Stack] = []
        self._recording: Recording | None = None

    # --- the run ------------------------------------------------------------

    async def run(self) -> BenchReport:
        started = time.monotonic()
        machine = await asyncio.to_thread(describe_machine)
        # As the image build does (UV_COMPILE_BYTECODE, a non-editable
        # install): with PYTHONDONTWRITEBYTECODE set and no .pyc, the worker
        # would compile workflows/checkout.py for every workflow run the
        # sandbox starts, a cost the deployed worker never pays.
        await asyncio.to_thread(compile_project_sources)
        self.sampler.add(ProcessTree("driver", os.getpid(), recursive=False))
        self.sampler.start()
        try:
            self.progress.note(f"starting PostgreSQL in {self.data_dir}")
            self._postgres = await start_postgres(self.data_dir / "pg")
            self.sampler.add(ProcessTree("postgres", self._postgres.pid))

            main = await self._start_stack("main", database="postgres", naive=False)
            await self._measure_main(main)
            saga_ids = [i for i in main.order_ids if i not in set(main.sagaless_order_ids)]
            self.temporal_cost = await checkout_cost(main.temporal, saga_ids)
            self.books.append(await self._check(main))
            await self._stop_stack(main)

            naive = await self._start_stack("naive", database="naive", naive=True)
            await self._measure_naive(naive)
            self.books.append(await self._check(naive))
            await self._stop_stack(naive)
        finally:
            await self._teardown()
        return build_report(
            asdict(self.config),
            machine,
            time.monotonic() - started,
            self.phases,
            self.books,
            temporal_cost=self.temporal_cost,
            profile=self.profile,
        )

    async def _measure_main(self, stack: Stack) -> None:
        c = self.config
        shop = await self._open_shop(stack)
        saga = driver.checkout(stack.api, shop, wait=True)
        ceilings: list[tuple[Variant, Send]] = [
            (results.EMPTY, driver.workflow_ceiling(stack.api, shop, "/bench/empty-workflow")),
            (results.NOOP, driver.workflow_ceiling(stack.api, shop, "/bench/noop-saga")),
            (results.FLOOR, driver.floor(stack.api, shop)),
            (results.TOKEN, driver.workflow_ceiling(stack.api, shop, "/bench/token-check")),
            (results.IN_PROCESS, driver.in_process(stack.temporal)),
        ]
        await self._warm_up(stack, results.SAGA, saga, sagas=True)
        for variant, send in ceilings:
            await self._warm_up(stack, variant, send, sagas=False)

        loaded = await self._closed(
            stack, results.SAGA, saga, c.orders, c.concurrency, sagas=True, profile=True
        )
        open_rate = c.rate or targets.OPEN_LOOP_SHARE * loaded.throughput
        await self._open(stack, driver.checkout(stack.api, shop, wait=False), open_rate)
        await self._closed(stack, results.SAGA, saga, c.single_orders, 1, sagas=True)
        # The ceilings answer when their work is done: nothing to wait for after.
        for variant, send in ceilings:
            await self._closed(stack, variant, send, c.orders, c.concurrency, sagas=False)
            await self._closed(stack, variant, send, c.single_orders, 1, sagas=False)

    async def _measure_naive(self, stack: Stack) -> None:
        c = self.config
        shop = await self._open_shop(stack)
        naive = driver.checkout(stack.api, shop, wait=True)
        await self._warm_up(stack, results.NAIVE, naive, sagas=True)
        await self._closed(stack, results.NAIVE, naive, c.orders, c.concurrency, sagas=True)
        await self._closed(stack, results.NAIVE, naive, c.single_orders, 1, sagas=True)

    # --- stacks -------------------------------------------------------------

    async def _start_stack(self, name: str, *, database: str, naive: bool) -> Stack:
        assert self._postgres is not None
        self.progress.note(f"starting the {name} stack")
        stack = await start_stack(
            name,
            postgres=self._postgres,
            database=database,
            data_dir=self.data_dir,
            signing_key=self._key,
            task_queue=self.settings.task_queue,
            naive=naive,
        )
        self._stacks.append(stack)
        for child in stack.processes.children:
            self.sampler.add(ProcessTree(child.name, child.process.pid))
        return stack

    async def _stop_stack(self, stack: Stack) -> None:
        for child in stack.processes.children:
            self.sampler.remove(child.name)
        self._stacks.remove(stack)
        await stack.close()

    async def _teardown(self) -> None:
        """Stop whatever still runs; each step even if another failed."""
        if self._recording is not None:
            self._recording.kill()
            self._recording = None
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
            sagaless=stack.sagaless_order_ids,
        )

    # --- phases -------------------------------------------------------------

    @staticmethod
    def _note_orders(stack: Stack, outcomes: list[Outcome], *, sagas: bool) -> None:
        ids = [o.order_id for o in outcomes if o.order_id]
        stack.order_ids += ids
        if not sagas:
            stack.sagaless_order_ids += ids

    async def _warm_up(self, stack: Stack, variant: Variant, send: Send, *, sagas: bool) -> None:
        """Unmeasured requests first: connection pools, caches and imports fill up."""
        n = self.config.warmup
        if n <= 0:
            return
        self.progress.start(f"warm-up {variant.label}", n)
        outcomes = await driver.closed_loop(n, min(4, self.config.concurrency), send, self.progress)
        self._note_orders(stack, outcomes, sagas=sagas)
        if sagas:
            ids = [o.order_id for o in outcomes if o.ok and o.order_id]
            await driver.wait_for_sagas(stack.sessions, ids, self.config.grace_seconds)
        self.progress.finish(f"{sum(o.ok for o in outcomes)}/{n} ok")

    async def _closed(
        self,
        stack: Stack,
        variant: Variant,
        send: Send,
        n: int,
        concurrency: int,
        *,
        sagas: bool,
        profile: bool = False,
    ) -> PhaseResult:
        """A closed loop; ``profile``: py-spy samples it when the run profiles."""
        await asyncio.sleep(PAUSE_BETWEEN_PHASES)
        self.progress.start(f"{variant.label} @{concurrency}", n)
        begun = await self._begin(stack, profile=profile)
        outcomes = await driver.closed_loop(n, concurrency, send, self.progress)
        return await self._finish(
            stack, variant, CLOSED, concurrency, n, outcomes, begun, sagas=sagas
        )

    async def _open(self, stack: Stack, send: Send, target_rate: float) -> PhaseResult:
        c = self.config
        await asyncio.sleep(PAUSE_BETWEEN_PHASES)
        target_rate = max(target_rate, 0.1)
        n = max(1, round(target_rate * c.open_seconds))
        self.progress.start(f"saga open loop {target_rate:.1f}/s", n)
        begun = await self._begin(stack)
        run = await driver.open_loop(target_rate, c.open_seconds, send, self.progress)
        ids = [o.order_id for o in run.outcomes if o.ok and o.order_id]
        in_time = await driver.wait_for_sagas(stack.sessions, ids, c.open_grace_seconds)
        kept_up = len(in_time) == len(ids) == n
        return await self._finish(
            stack,
            results.SAGA,
            OPEN,
            0,
            n,
            run.outcomes,
            begun,
            sagas=True,
            target_rate=target_rate,
            kept_up=kept_up,
            max_send_lag_ms=run.max_send_lag * 1000,
        )

    async def _begin(self, stack: Stack, *, profile: bool = False) -> _Begun:
        """Start measuring a phase: the profiler first, so its attaching is not measured."""
        recording = await self._start_profile(stack) if profile else None
        await reset_statements(stack.engine)
        return _Begun(Clock.now(), self.sampler.begin(), recording)

    async def _start_profile(self, stack: Stack) -> Recording | None:
        if self.profiling is None:
            return None
        children = {c.name: c.process.pid for c in stack.processes.children}
        pids = {name: children[name] for name in PROFILED}
        self._recording = await start_recording(
            self.profiling.py_spy,
            pids,
            self.profiling.directory,
            self.data_dir / "logs" / "profile",
        )
        # py-spy's CPU is the profiler's own: counted apart, not as "other
        # programs" disturbing the run.
        for name, pid in self._recording.pids.items():
            self.sampler.add(ProcessTree(name, pid, recursive=False))
        return self._recording

    async def _stop_profile(self, recording: Recording, during: str) -> None:
        assert self.profiling is not None
        try:
            profiles = await recording.stop()
        finally:
            for name in recording.pids:
                self.sampler.remove(name)
            self._recording = None
        summary = self.profiling.directory / SUMMARY
        write_summary(profiles, summary, during=during)
        self.profile = ProfileFiles(
            during=during,
            summary=str(summary),
            flamegraphs={p.name: str(p.flamegraph) for p in profiles},
            stacks={p.name: str(p.stacks) for p in profiles},
        )

    async def _finish(
        self,
        stack: Stack,
        variant: Variant,
        kind: str,
        concurrency: int,
        requested: int,
        outcomes: list[Outcome],
        begun: _Begun,
        *,
        sagas: bool,
        target_rate: float | None = None,
        kept_up: bool | None = None,
        max_send_lag_ms: float | None = None,
    ) -> PhaseResult:
        self._note_orders(stack, outcomes, sagas=sagas)
        clock = begun.clock
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
        measured = self.sampler.end(begun.mark)
        statements = await read_statements(stack.engine)
        if begun.recording is not None:
            during = f"during the {variant.label} closed loop at C = {concurrency}"
            await self._stop_profile(begun.recording, during)
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
            statements=statements,
        )
        self.phases.append(phase)
        self.progress.finish(
            f"{completed}/{requested} done, {phase.throughput:.1f}/s, "
            f"p50 {phase.latency.p50_ms:.0f} ms, p99 {phase.latency.p99_ms:.0f} ms"
        )
        return phase
