"""Publish only what a replica holds (`RELAY_REDIS_WAIT_REPLICAS` > 0): a fenced Redis `WAIT` per round.

Why. The bidder waits for its replicas before it answers (`BIDDER_REDIS_WAIT_REPLICAS`), but a step it
answers UNAVAILABLE is still applied on the primary, outbox entry included. Were the relay to publish
that entry and the primary then be lost to a replica without the step, the promoted primary would give
the next accepted bid of that item the same seq, hence the same event id (`<item>.<seq>`): JetStream
(Nats-Msg-Id) and the archive (unique item and seq) would drop the real bid as a duplicate of one that
never became state. So with this option the relay, after reading a round of entries and before publishing
any, waits until the replicas hold them; while they do not, it publishes nothing of that round, and the
round stays pending for the next try. JetStream only ever gets entries a replica holds.

The fence is the bidder's (`core_bidder.replica_wait` says why at length): WAIT counts only its own
connection's writes, so an empty PUBLISH to `REPLICATION_FENCE_CHANNEL` goes first on the same connection,
in one round trip. Its offset in the one ordered replication stream is past every write that completed
before it was sent, the bidder's outbox entries that this round read among them.

What it cannot do: the bidder's live PUBLISH (the viewers' channel) leaves in the same Lua step, before
any replica has it; and a replica that acknowledged is not the one a failover must promote. See the
README ("What is durable when").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from auction_contract.redis_layout import REPLICATION_FENCE_CHANNEL
from relay import metrics

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis
    from relay.settings import RelaySettings

__all__ = ["ReplicaWait"]

_ACKNOWLEDGED = metrics.REDIS_WAITS.labels("acknowledged")
_BEHIND = metrics.REDIS_WAITS.labels("behind")
_FAILED = metrics.REDIS_WAITS.labels("failed")


class ReplicaWait:
    """How many replicas must hold a round before it is published, and how long one WAIT may take."""

    def __init__(self, redis: AnyRedis, replicas: int, timeout_ms: int) -> None:
        self._redis = redis
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    @classmethod
    def of(cls, settings: RelaySettings, redis: AnyRedis) -> ReplicaWait | None:
        """The policy the settings ask for; None when off (then a round sends nothing extra)."""
        if settings.redis_wait_replicas == 0:
            return None
        return cls(redis, settings.redis_wait_replicas, settings.redis_wait_timeout_ms)

    async def acknowledged(self) -> int:
        """How many replicas hold every write completed so far (at least `replicas`, or fewer after the
        timeout); 0 when the WAIT itself failed (e.g. refused: this server is a replica). RedisError
        when Redis cannot be reached."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.execute_command("PUBLISH", REPLICATION_FENCE_CHANNEL, "")
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
                fence, acknowledged = await pipe.execute(raise_on_error=False)
        except RedisError:
            _FAILED.inc()
            raise
        if isinstance(fence, Exception) or not isinstance(acknowledged, int):
            _FAILED.inc()
            return 0
        (_ACKNOWLEDGED if acknowledged >= self.replicas else _BEHIND).inc()
        return acknowledged
