"""What one outage's bid samples say, computed without I/O: phases, a timeline, the verdict's inputs.

A sample is `[sent_at_unix_seconds, latency_ms, accepted]` as `auction_bench.archive_load` records it.
Every figure is taken by the time a bid was sent, so a bid sent just before the server went down and
answered after counts as "before".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from auction_bench.http_load import percentile

PHASES = ("before", "during", "after")
Sample = Sequence[float]


@dataclass
class Phase:
    name: str
    bids: int
    seconds: float
    bids_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass
class Point:
    """One bucket of the timeline; `t` is its middle in seconds from the moment the server went down."""

    t: float
    bids_per_s: float
    p50_ms: float
    p99_ms: float


def phases(marks: Sequence[tuple[float, float]], samples: Sequence[Sample]) -> list[Phase]:
    """POST /bid answers per second and p50/p99 in each of the (before, during, after) windows."""
    result = []
    for name, (start, end) in zip(PHASES, marks, strict=True):
        latencies = sorted(s[1] for s in samples if start <= s[0] < end)
        seconds = max(end - start, 1e-9)
        result.append(
            Phase(
                name, len(latencies), end - start, len(latencies) / seconds,
                percentile(latencies, 0.50), percentile(latencies, 0.99),
            )
        )  # fmt: skip
    return result


def timeline(marks: Sequence[tuple[float, float]], samples: Sequence[Sample], bucket: float) -> list[Point]:
    """Whole buckets of `bucket` seconds from the start of "before" to the end of "after"; each point
    stands at its bucket's middle."""
    start, down, end = marks[0][0], marks[1][0], marks[2][1]
    count = max(1, math.floor((end - start) / bucket))
    buckets: list[list[float]] = [[] for _ in range(count)]
    for sample in samples:
        index = int((sample[0] - start) // bucket)
        if 0 <= index < count:
            buckets[index].append(sample[1])
    points = []
    for index, latencies in enumerate(buckets):
        latencies.sort()
        points.append(
            Point(
                start + (index + 0.5) * bucket - down, len(latencies) / bucket,
                percentile(latencies, 0.50), percentile(latencies, 0.99),
            )
        )  # fmt: skip
    return points


def moved_pct(before: float, during: float) -> float:
    """How far `during` moved from `before`, in % (NaN when there is nothing to compare)."""
    if not before or math.isnan(before) or math.isnan(during):
        return float("nan")
    return (during / before - 1) * 100


@dataclass(frozen=True)
class Bound:
    """When the write path counts as unchanged by an outage: a coupling to the server that is down
    (a call that waits on it) would show as answers that stop and latencies of seconds, far beyond these.
    The p99 bound is the one tests/test_archive_outages.py asserts."""

    rate_pct: float = 5.0
    p99_factor: float = 2.5
    p99_slack_ms: float = 25.0

    def rate_ok(self, before: Phase, during: Phase) -> bool:
        moved = moved_pct(before.bids_per_s, during.bids_per_s)
        return not math.isnan(moved) and abs(moved) <= self.rate_pct

    def p99_ok(self, before: Phase, during: Phase) -> bool:
        if math.isnan(before.p99_ms) or math.isnan(during.p99_ms):
            return False
        return during.p99_ms <= max(before.p99_ms * self.p99_factor, before.p99_ms + self.p99_slack_ms)

    def describe(self) -> str:
        return (
            f"answers per second within {self.rate_pct:.0f} % of the rate before, and p99 at most "
            f"{self.p99_factor:g}x the p99 before or {self.p99_slack_ms:.0f} ms above it, whichever is more"
        )
