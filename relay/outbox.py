"""The outbox streams in Redis, seen through one consumer group: read, claim, remove, measure.

Every call covers all partitions in one pipeline, one command per partition, so it costs one round trip
and never mixes hash slots inside a command (each outbox stream has its own slot on Redis Cluster).

Reading follows the consumer-group recipe: a consumer first re-reads its own pending entries (id "0",
then after the last one it saw) and only then new ones (">"). The relay moves a partition back to "0"
whenever a publish failed or entries were claimed, so retries come before anything new.
Removal is XDEL then XACK: if the process dies in between, the entry is gone but still pending, and the
next read or claim of it returns it empty, which counts as done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ResponseError

from auction_contract.redis_layout import EVENT_FIELD as EVENT_FIELD_NAME
from auction_contract.redis_layout import (
    LEADER_MAX_FIELD,
    PREVIOUS_LEADER_FIELD,
    dead_letter_key,
    outbox_key,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from redis.asyncio.client import Pipeline

    from auction_common.redis_client import AnyRedis

NEW = ">"
OWN_PENDING = "0"
EVENT_FIELD = EVENT_FIELD_NAME.encode()
LEADER_FIELD = PREVIOUS_LEADER_FIELD.encode()
MAX_FIELD = LEADER_MAX_FIELD.encode()
# Dead letters kept per partition (approximate cap): enough to inspect, bounded if a bug floods them.
DEAD_LETTER_MAXLEN = 10_000
DEAD_LETTER_PATTERN = dead_letter_key(0).replace("{p0}", "{p*}")

# Removes consumers that have nothing pending and were idle long enough, atomically per stream: a
# consumer read between a check and a delete could otherwise lose its pending entries with it.
_FORGET_STALE = """
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= ARGV[3] and info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""


@dataclass(frozen=True, slots=True)
class Entry:
    partition: int
    entry_id: bytes
    # None when the entry was deleted while still pending (a relay died between XDEL and XACK).
    payload: bytes | None
    # A bid's leader before it (`PREVIOUS_LEADER_FIELD`), for the notices; None for other entries.
    previous_leader: bytes | None = None
    # AUDIT ONLY: a bid's leader maximum (`LEADER_MAX_FIELD`), for the archive alone; None without one.
    leader_max: bytes | None = None

    @classmethod
    def of(cls, partition: int, entry_id: bytes, fields: Mapping[bytes, bytes]) -> Entry:
        return cls(
            partition, entry_id, fields.get(EVENT_FIELD), fields.get(LEADER_FIELD), fields.get(MAX_FIELD)
        )


@dataclass(frozen=True, slots=True)
class PartitionDepth:
    partition: int
    entries: int
    oldest_age_seconds: float
    dead_letters: int = 0


class Outbox:
    """One relay instance's view of the outbox partitions."""

    def __init__(self, redis: AnyRedis, partitions: int, group: str, consumer: str, batch_size: int) -> None:
        self._redis = redis
        self._keys = [outbox_key(p) for p in range(partitions)]
        self._dead_keys = [dead_letter_key(p) for p in range(partitions)]
        self._group = group
        self._consumer = consumer
        self._batch = batch_size
        self._forget = redis.register_script(_FORGET_STALE)

    @property
    def partitions(self) -> int:
        return len(self._keys)

    async def ensure_groups(self) -> None:
        """Create the group on every partition (reading from the very first entry) unless it exists."""
        for key in self._keys:
            try:
                await self._redis.xgroup_create(key, self._group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, cursors: Mapping[int, str]) -> dict[int, list[Entry]]:
        """Up to `batch_size` entries per partition from the given cursor (">", "0" or an entry id)."""
        partitions = list(cursors)
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in partitions:
                self._queue_read(pipe, self._keys[p], cursors[p])
            replies = await pipe.execute(raise_on_error=False)
        found: dict[int, list[Entry]] = {}
        for p, reply in zip(partitions, replies, strict=True):
            if isinstance(reply, ResponseError) and "NOGROUP" in str(reply):
                await self.ensure_groups()  # Redis lost the group (restart without data): make it again
                continue
            if isinstance(reply, Exception):
                raise reply
            entries = [Entry.of(p, eid, fields) for _key, rows in reply for eid, fields in rows]
            found[p] = entries
        return found

    @property
    def can_block(self) -> bool:
        """Whether `wait_new` can block: one XREADGROUP names every partition, so a single server only
        (on a cluster the partitions live on several nodes)."""
        return not isinstance(self._redis, RedisCluster)

    async def wait_new(self, block_seconds: float) -> dict[int, list[Entry]]:
        """New entries of any partition, waiting up to `block_seconds` for the first (XREADGROUP BLOCK):
        an idle relay sleeps in Redis instead of polling, and wakes the moment a bid is written."""
        streams: dict[Any, Any] = dict.fromkeys(self._keys, NEW)
        try:
            reply: Any = await self._redis.xreadgroup(
                self._group,
                self._consumer,
                streams,
                count=self._batch,
                block=max(1, int(block_seconds * 1000)),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_groups()
            return {}
        index = {key.encode(): p for p, key in enumerate(self._keys)}
        found: dict[int, list[Entry]] = {}
        for key, rows in reply or ():
            p = index[key if isinstance(key, bytes) else key.encode()]
            found[p] = [Entry.of(p, eid, fields) for eid, fields in rows]
        return found

    def _queue_read(self, pipe: Pipeline | ClusterPipeline, key: str, cursor: str) -> None:
        if isinstance(self._redis, RedisCluster):
            # XREADGROUP's keys are "movable", so redis-py would ask a server for them (COMMAND GETKEYS,
            # twice per call, on every poll); the slot table already names the node. A stale table gets
            # MOVED, and the pipeline then sends that command again, routed by its key.
            node = self._redis.get_node_from_key(key)
            args = ("GROUP", self._group, self._consumer, "COUNT", self._batch, "STREAMS", key, cursor)
            pipe.execute_command("XREADGROUP", *args, target_nodes=node)
        else:
            pipe.xreadgroup(self._group, self._consumer, {key: cursor}, count=self._batch)

    async def remove(self, done: Mapping[int, Iterable[bytes]]) -> None:
        """Delete published entries from the outbox and from this consumer's pending list."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for p, ids in done.items():
                batch = list(ids)
                if batch:
                    pipe.xdel(self._keys[p], *batch)
                    pipe.xack(self._keys[p], self._group, *batch)
            await pipe.execute()

    async def quarantine(self, bad: Iterable[tuple[Entry, str]]) -> None:
        """Move entries that are not valid events to their partition's dead-letter stream, once.

        The copy goes first and the removal after it, in one pipeline per call, so a crash in between
        leaves the entry in both places (quarantined again later, never lost). Each dead letter keeps
        the entry id, the raw payload and the reason, for an operator to inspect and delete.
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry, reason in bad:
                fields: dict[bytes, bytes] = {
                    b"entry": entry.entry_id,
                    EVENT_FIELD: entry.payload or b"",
                    b"reason": reason.encode(),
                }
                pipe.xadd(self._dead_keys[entry.partition], fields, maxlen=DEAD_LETTER_MAXLEN)  # type: ignore[arg-type]
                pipe.xdel(self._keys[entry.partition], entry.entry_id)
                pipe.xack(self._keys[entry.partition], self._group, entry.entry_id)
            await pipe.execute()

    async def claim(self, min_idle_seconds: float) -> dict[int, int]:
        """Take over entries pending for longer than `min_idle_seconds` (their consumer died or hangs).

        Returns how many entries were claimed per partition; they are now this consumer's pending
        entries, which the next read from "0" returns.
        """
        claimed: dict[int, int] = {}
        idle_ms = int(min_idle_seconds * 1000)
        for p, key in enumerate(self._keys):
            start: bytes | str = "0-0"
            while True:
                # Not JUSTID: redis-py drops the next cursor from that reply.
                reply = await self._redis.xautoclaim(
                    key, self._group, self._consumer, idle_ms, start, count=self._batch
                )
                start, entries = reply[0], reply[1]
                if entries:
                    claimed[p] = claimed.get(p, 0) + len(entries)
                if start in (b"0-0", "0-0"):
                    break
        return claimed

    async def forget_stale_consumers(self, idle_seconds: float) -> int:
        removed = 0
        for key in self._keys:
            args: list[str | int] = [self._group, int(idle_seconds * 1000), self._consumer]
            count = await self._forget(keys=[key], args=args)
            removed += int(count)
        return removed

    async def depth(self) -> list[PartitionDepth]:
        """Entries per partition and the age of the oldest (the ids are insertion times in ms)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, dead in zip(self._keys, self._dead_keys, strict=True):
                pipe.xlen(key)
                pipe.xrange(key, "-", "+", count=1)
                pipe.xlen(dead)
            replies = await pipe.execute()
        now_ms = time.time() * 1000
        depths: list[PartitionDepth] = []
        for p in range(len(self._keys)):
            length, first, dead = replies[3 * p], replies[3 * p + 1], replies[3 * p + 2]
            age = 0.0
            if first:
                first_ms = int(first[0][0].split(b"-", 1)[0])
                age = max(0.0, (now_ms - first_ms) / 1000)
            depths.append(PartitionDepth(p, int(length), age, int(dead)))
        return depths
