"""An in-process token bucket per bidder (`sub`): a safety valve against one runaway client.

It is per gateway process on purpose: a shared limiter (Redis) would put a network round trip on every
bid, and the bidder is the one place where fairness between bidders is decided. Memory is bounded:
when the table grows past `max_buckets`, buckets that have refilled completely (idle long enough to be
indistinguishable from new ones) are dropped, and if that is not enough the oldest half goes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from edge_gateway.problems import rate_limited


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets keyed by bidder: `rate` tokens per second, at most `burst` saved up."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> int:
        """Take one token for `key`; 0 when allowed, else the whole seconds to wait (>= 1)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._evict(now)
            self._buckets[key] = _Bucket(self._burst - 1.0, now)
            return 0
        tokens = bucket.tokens + (now - bucket.stamp) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0
        bucket.tokens = tokens
        return max(1, math.ceil((1.0 - tokens) / self._rate))

    def check(self, key: str) -> None:
        """`acquire`, raising the 429 problem (with `Retry-After`) when the bucket is empty."""
        wait = self.acquire(key)
        if wait:
            raise rate_limited(wait)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        refill_seconds = self._burst / self._rate
        idle = [k for k, b in self._buckets.items() if now - b.stamp >= refill_seconds]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:
            # Everyone is active: drop the oldest-inserted half rather than grow without bound.
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]
