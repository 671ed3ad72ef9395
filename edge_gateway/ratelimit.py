"""In-process token buckets: per bidder (`sub`) on writes, per client address on reads and failed logins.

They are per gateway process on purpose: a shared limiter (Redis) would put a network round trip on every
bid, and the bidder is the one place where fairness between bidders is decided. The per-address buckets
(`client_key`) are a safety valve against one flooding or token-guessing host; IPv6 clients are keyed
by their /64, which one host (or one customer of a provider) normally holds whole, so rotating addresses
inside it does not buy fresh buckets.

Memory is bounded: when the table reaches `max_buckets`, buckets that have refilled completely (idle
long enough to be indistinguishable from new ones) are dropped, and when that frees less than a quarter
of the table the oldest-inserted go until half is free. Either way the next eviction is at least a
quarter of `max_buckets` inserts away, so its scan costs O(1) per insert even under a flood of new keys.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from edge_gateway.problems import rate_limited

if TYPE_CHECKING:
    from starlette.types import Scope


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets keyed by a string: `rate` tokens per second, at most `burst` saved up."""

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

    def check(self, key: str, detail: str | None = None) -> None:
        """`acquire`, raising the 429 problem (with `Retry-After`) when the bucket is empty."""
        wait = self.acquire(key)
        if wait:
            raise rate_limited(wait, detail)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        refill_seconds = self._burst / self._rate
        idle = [k for k, b in self._buckets.items() if now - b.stamp >= refill_seconds]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) > self._max_buckets * 3 // 4:
            # Mostly active: drop the oldest-inserted rather than grow or rescan on every insert.
            excess = len(self._buckets) - self._max_buckets // 2
            for key in list(self._buckets)[:excess]:
                del self._buckets[key]


def client_key(scope: Scope) -> str:
    """The rate-limit key of the connection's peer: its IPv4 address, or its IPv6 /64."""
    client = scope.get("client")
    host: str = client[0] if client else ""
    return _ipv6_prefix(host) if ":" in host else host


@lru_cache(maxsize=4096)
def _ipv6_prefix(host: str) -> str:
    """The /64 of an IPv6 peer; an IPv4-mapped one (dual-stack socket) is keyed as its IPv4 address."""
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
