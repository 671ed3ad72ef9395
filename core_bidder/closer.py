"""The closer: finds due auctions in each partition's ends set and closes each exactly once.

Every bidder replica runs one. Each tick it asks Redis for the time, reads every partition's items whose
effective end has passed (`ZRANGEBYSCORE ends -inf now`, one pipeline), and runs `close_item.lua` for
each. The Lua step re-checks everything under Redis's own clock, so a replica that is late, early or
racing another changes nothing twice: the first call records the result and the `closed` event, the
others see the result and only tidy the set. All state is in Redis, so a restarted bidder finds the
items it did not close yet. An extension moves the item's score in the same step as the bid, so a
closer that read the old score finds the end moved and leaves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Counter, Histogram
from redis.exceptions import NoScriptError, RedisError

from auction_contract.redis_layout import ends_key
from core_bidder.replica_wait import ReplicaWait
from core_bidder.scripts import register

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis
    from core_bidder.settings import BidderSettings
    from core_bidder.store import ItemStore

log = structlog.get_logger(__name__)
CLOSED = Counter("bidder_auctions_closed_total", "Auctions this process closed (the close step's first run)")
CLOSE_DELAY = Histogram(
    "bidder_close_delay_seconds",
    "From an auction's effective end to its close step",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30),
)


class Closer:
    def __init__(self, redis: AnyRedis, store: ItemStore, settings: BidderSettings) -> None:
        self._redis = redis
        self._store = store
        self._partitions = settings.partitions
        self._interval = settings.close_interval_seconds
        self._batch = settings.close_batch
        self._maxlen = str(settings.history_maxlen)
        self._publish = settings.publish_command
        self._script = register(redis, "close_item")
        self._wait = ReplicaWait.of(settings)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="closer")

    async def stop(self) -> None:
        """Cancel the loop and wait for it. The loop also checks `_stopping`: redis-py can turn a
        cancellation that lands inside a command into a ConnectionError, which the loop would otherwise
        log and go on from, so `stop` waited forever (seen once in about twenty runs of the health test)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _stopped(self) -> bool:
        return self._stopping

    async def _run(self) -> None:
        while not self._stopped():
            try:
                closed = await self.tick()
            except (RedisError, OSError) as exc:
                if self._stopped():
                    return
                log.warning("closer_unavailable", error=repr(exc))
                closed = 0
            except Exception:  # a bug must not stop every future close: log it and go on
                log.exception("closer_failed")
                closed = 0
            if closed < self._batch:  # a full batch: more may be due, go on at once
                await asyncio.sleep(self._interval)

    async def tick(self) -> int:
        """Close what is due now; how many this call closed."""
        secs, micros = await self._redis.time()
        now_ms = secs * 1000 + micros // 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in range(self._partitions):
                pipe.zrangebyscore(ends_key(p), "-inf", now_ms, start=0, num=self._batch, withscores=True)
            per_partition = await pipe.execute()
        due = [
            (member.decode() if isinstance(member, bytes) else str(member), int(score))
            for rows in per_partition
            for member, score in rows
        ]
        if not due:
            return 0
        calls = []
        for item_id, _ in due:
            keys = self._store.keys_for(item_id)
            calls.append(
                (
                    [keys.item, keys.events, keys.outbox, keys.ends],
                    [item_id, self._maxlen, keys.channel, self._publish],
                )
            )
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_list, args in calls:
                pipe.execute_command("EVALSHA", self._script.sha, len(key_list), *key_list, *args)
            results = await pipe.execute(raise_on_error=False)
        closed = 0
        for (item_id, end_ms), (key_list, args), result in zip(due, calls, results, strict=True):
            if isinstance(result, NoScriptError):  # this node lost its scripts: load and run once more
                result = await self._script(keys=key_list, args=args)
            if isinstance(result, Exception):
                log.warning("close_failed", item_id=item_id, error=repr(result))
                continue
            code = _text(result[0])
            if code == "C":
                closed += 1
                CLOSED.inc()
                closed_ms = int(_text(result[2]))
                CLOSE_DELAY.observe(max(0.0, (closed_ms - end_ms) / 1000))
                log.info("auction_closed", item_id=item_id, seq=int(_text(result[1])))
        if self._wait is not None and (behind := await self._wait.after(self._redis)) is not None:
            # Nobody waits for a close's answer; a close lost with the primary is redone by the closer
            # on the promoted replica, from the state the acknowledged bids left there.
            log.warning("close_not_replicated", items=len(due), error=str(behind))
        return closed


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
