"""How much load a bench run puts on the stack: the full run's defaults and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass


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
