"""Latency percentiles and throughput, and the clocks they are read from: no I/O."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linearly interpolated between ranks.

    The same definition as numpy's default, so a figure can be checked with
    any tool. NaN for no values: a phase where nothing completed has no
    latency, and the report shows that instead of a made-up zero.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """A latency distribution in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), sum(ms) / len(ms), max(ms))


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing happened or no time passed."""
    if count <= 0 or seconds <= 0:
        return 0.0
    return count / seconds


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when either is missing or the denominator is 0."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


@dataclass(frozen=True)
class Clock:
    """The event loop's clock and the wall clock read together, to convert between them.

    Requests are timed on the loop's monotonic clock; the saga's completion
    is a timestamp written by PostgreSQL on the same machine's wall clock.
    """

    loop: float
    wall: float

    @classmethod
    def now(cls) -> Clock:
        return cls(asyncio.get_running_loop().time(), time.time())

    def to_loop(self, wall: float) -> float:
        return self.loop + (wall - self.wall)
