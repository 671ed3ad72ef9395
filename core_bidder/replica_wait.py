"""Waiting for replicas after each write step (`BIDDER_REDIS_WAIT_REPLICAS` > 0): Redis `WAIT`.

Redis replicates asynchronously: a write answered by the primary may be lost if the primary dies before a
replica has it and a replica is promoted. With this option the bidder answers a write step (a commit
batch of bids, a buy-now, a create, a close) only once `replicas` replicas have acknowledged it; with
group commit that is one WAIT per batch, not per bid.

**The fence.** WAIT waits for the replication offset of the last write *of its own connection*. A step
that wrote nothing (an idempotent replay, a refusal without a key) would not wait at all, or, on a pooled
connection, only for some older write; yet its answer rests on writes that may not be replicated yet
(the replay's original bid, the bid that made this one too low). So each WAIT follows a fence on the
same connection, in one round trip: an empty PUBLISH to `REPLICATION_FENCE_CHANNEL`, which a single
Redis server replicates like a write. The replication stream is one ordered log, so the fence's offset
is past every write that completed before it was sent, whichever connection made it; its acknowledgement
covers them all. (Cluster mode does not replicate PUBLISH, one reason the option is refused there:
see `BidderSettings._check_cluster`.) WAIT's documented contract is the connection's previous *writes*;
Redis 7.0, which the tests run, happens to move a connection's offset on any command, later versions
only on a write that is propagated, so the fence is a write. `tests/test_bidder_replica_wait.py` shows
a bare WAIT answering at once for a write it does not cover, and the fenced one counting it.

**When fewer replicas acknowledge in time.** The step is applied on the primary and Redis cannot take
it back: viewers may already have seen it. The caller is answered UNAVAILABLE (`ReplicasBehind`, retryable,
a 503 at the edge), which is the truth: the outcome is decided but not yet durable. A retry with the
same idempotency key replays the stored answer (same bid id, same seq, no second bid) and waits again:
once the replicas have it, the caller gets the answer it would have got at once. If instead the primary
is lost and a replica without the step is promoted, the step never happened, and the retry is applied
afresh on the new primary; either way every caller ends with one outcome and nothing twice. Without an
idempotency key, UNAVAILABLE means what a lost answer always means: the outcome is unknown (the SDK
always sends a key). Reads (GetItem, ListItems) do not wait: they acknowledge nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from auction_contract.redis_layout import REPLICATION_FENCE_CHANNEL
from core_bidder.errors import ReplicasBehind

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio.client import Pipeline
    from redis.asyncio.cluster import ClusterPipeline

    from auction_common.redis_client import AnyRedis
    from core_bidder.settings import BidderSettings

__all__ = ["WAITS", "WAIT_SECONDS", "ReplicaWait"]

WAITS = Counter(
    "bidder_redis_waits_total",
    "WAITs for replica acknowledgement after a write step, by outcome (acknowledged, behind, failed)",
    ["outcome"],
)
_ACKNOWLEDGED, _BEHIND, _FAILED = WAITS.labels("acknowledged"), WAITS.labels("behind"), WAITS.labels("failed")
WAIT_SECONDS = Histogram(
    "bidder_redis_wait_seconds",
    "A write step's round trip with its fence and WAIT, until the replicas' answer (or the timeout)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class ReplicaWait:
    """One bidder's WAIT policy: how many replicas, for how long; counts every outcome."""

    def __init__(self, replicas: int, timeout_ms: int) -> None:
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    @classmethod
    def of(cls, settings: BidderSettings) -> ReplicaWait | None:
        """The policy the settings ask for; None when off (then no write step does anything extra)."""
        if settings.redis_wait_replicas == 0:
            return None
        return cls(settings.redis_wait_replicas, settings.redis_wait_timeout_ms)

    def queue(self, pipe: Pipeline | ClusterPipeline) -> None:
        """Queue the fence and the WAIT after the step's own commands (two replies at the end)."""
        pipe.execute_command("PUBLISH", REPLICATION_FENCE_CHANNEL, "")
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)

    def check(self, tail: Sequence[object], started: float) -> ReplicasBehind | None:
        """The error to answer with, given the fence's and WAIT's replies (`queue`), or None: replicated.

        `started`: `time.perf_counter()` when the round trip was sent."""
        WAIT_SECONDS.observe(time.perf_counter() - started)
        acknowledged = tail[-1]
        if isinstance(acknowledged, int) and not isinstance(tail[-2], Exception):
            if acknowledged >= self.replicas:
                _ACKNOWLEDGED.inc()
                return None
            _BEHIND.inc()
            return ReplicasBehind(self.replicas, acknowledged, self.timeout_ms)
        _FAILED.inc()  # e.g. WAIT refused (the server is itself a replica): nothing is confirmed
        return ReplicasBehind(self.replicas, 0, self.timeout_ms)

    async def after(self, redis: AnyRedis) -> ReplicasBehind | None:
        """Fence and WAIT in one round trip, for a step that has already completed (on any connection)."""
        started = time.perf_counter()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                self.queue(pipe)
                tail = await pipe.execute(raise_on_error=False)
        except RedisError:
            WAIT_SECONDS.observe(time.perf_counter() - started)
            _FAILED.inc()
            raise
        return self.check(tail, started)
