"""The relay's main loop: read a round of outbox entries, publish them, confirm the acks, remove them.

Invariant: an entry leaves the outbox only after JetStream acknowledged it. Whatever fails (NATS down
or frozen, an ack that never comes, Redis gone) leaves the entry pending under this consumer; its
partition goes back to reading pending entries first, after a growing pause, so the loop neither spins
nor overtakes its own retries. While NATS is disconnected nothing is read at all: the outbox grows in
Redis and the bid path never notices.

Between the acks and the removal, the round's stored events become per-bidder notices (`relay.notices`):
a failure there leaves the round pending like a failed removal, so notices are at-least-once.

With `RELAY_REDIS_WAIT_REPLICAS`, a round is published only once the replicas hold it (`relay.replica_wait`
says why); a round they do not hold in time is left pending, unpublished, like a failed publish.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from relay import metrics
from relay.convert import Relayed, Routes, decode, relayed
from relay.errors import BadEntry
from relay.notices import plan_notices
from relay.outbox import NEW, OWN_PENDING, Entry

if TYPE_CHECKING:
    from relay.notices import NoticeSender
    from relay.outbox import Outbox
    from relay.publisher import BatchPublisher
    from relay.replica_wait import ReplicaWait
    from relay.settings import RelaySettings

log = structlog.get_logger(__name__)


class Backoff:
    """Exponential pause between failed rounds, reset by a good one."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay

    def reset(self) -> None:
        self._next = self._initial


class OutboxPump:
    def __init__(
        self,
        settings: RelaySettings,
        outbox: Outbox,
        publisher: BatchPublisher,
        notices: NoticeSender | None = None,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._publisher = publisher
        self._notices = notices
        self._replica_wait = replica_wait
        # Per partition: ">" (new entries) or where to continue reading this consumer's pending ones.
        self._cursors: dict[int, str] = dict.fromkeys(range(outbox.partitions), OWN_PENDING)
        self._backoff = Backoff(settings.poll_interval_seconds, settings.retry_max_seconds)
        self._next_claim = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until `stop` is set; a round in progress always finishes (publish, confirm, remove)."""
        while not stop.is_set():
            pause = await self._step()
            if pause > 0:
                await _sleep_unless(stop, pause)

    async def _step(self) -> float:
        """One round; returns how long to pause before the next one."""
        try:
            if time.monotonic() >= self._next_claim:
                await self._claim()
            connected = self._publisher.connected
            metrics.NATS_CONNECTED.set(1 if connected else 0)
            if not connected:
                return self._settings.poll_interval_seconds * 10
            entries = await self._outbox.read(self._cursors)
        except RedisError as exc:
            log.warning("outbox_unavailable", error=repr(exc))
            return self._backoff.next()
        if not any(entries.values()):
            idle = all(self._cursors[p] == NEW for p in entries)
            for p in entries:
                self._cursors[p] = NEW  # nothing (more) pending here: on to new entries
            if not (idle and self._outbox.can_block):
                return self._settings.poll_interval_seconds if idle else 0.0
            try:  # idle: wait in Redis for the next entry rather than poll
                entries = await self._outbox.wait_new(self._idle_block_seconds())
            except RedisError as exc:
                log.warning("outbox_unavailable", error=repr(exc))
                return self._backoff.next()
            if not any(entries.values()):
                return 0.0
        if self._replica_wait is not None and not await self._replicas_hold(self._replica_wait, entries):
            return self._backoff.next()
        started = time.perf_counter()
        failed = await self._relay(entries)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if failed:
            return self._backoff.next()
        self._backoff.reset()
        return 0.0

    def _idle_block_seconds(self) -> float:
        """Block until the next claim is due (it must not wait on new entries), at most the setting."""
        until_claim = self._next_claim - time.monotonic()
        return max(0.001, min(self._settings.idle_block_seconds, until_claim))

    async def _replicas_hold(self, wait: ReplicaWait, entries: dict[int, list[Entry]]) -> bool:
        """Whether the replicas hold every entry of the round just read (a fenced WAIT, sent after the
        read); if not, none of it is published: the round stays pending for the next try."""
        try:
            acknowledged = await wait.acknowledged()
        except RedisError as exc:
            log.warning("outbox_unavailable", error=repr(exc))
        else:
            if acknowledged >= wait.replicas:
                return True
            log.warning(
                "replicas_behind", wanted=wait.replicas, acknowledged=acknowledged,
                timeout_ms=wait.timeout_ms, entries=sum(map(len, entries.values())),
            )  # fmt: skip
        self._retry_pending(entries)
        return False

    async def _relay(self, entries: dict[int, list[Entry]]) -> bool:
        """Publish one round and remove what JetStream stored; True if anything failed."""
        done: dict[int, list[bytes]] = defaultdict(list)
        bad: list[tuple[Entry, str]] = []
        batch: list[tuple[Entry, Relayed]] = []
        docs: list[tuple[Entry, dict[str, Any]]] = []
        batch_docs: list[tuple[Entry, dict[str, Any]]] = []
        for entry in (e for rows in entries.values() for e in rows):
            if entry.payload is None:
                done[entry.partition].append(entry.entry_id)  # deleted already: only the ack is missing
                continue
            try:
                doc = decode(entry.payload)
            except BadEntry as exc:
                bad.append(self._bad(entry, exc))
                continue
            docs.append((entry, doc))
        routes = Routes.of(self._settings)
        for entry, doc in docs:
            try:
                batch.append((entry, relayed(doc, routes, entry.leader_max)))
                batch_docs.append((entry, doc))
            except BadEntry as exc:
                bad.append(self._bad(entry, exc))
        if bad:
            try:
                await self._outbox.quarantine(bad)
            except RedisError as exc:
                log.warning("quarantine_failed", error=repr(exc), entries=len(bad))
                self._retry_pending(entries)
                return True
        metrics.BATCH_SIZE.observe(len(batch))
        self.checkpoint("before_publish")
        stored = await self._publisher.publish([message for _, message in batch])
        self.checkpoint("after_publish")
        failed_partitions: set[int] = set()
        for (entry, _), ok in zip(batch, stored, strict=True):
            if ok:
                done[entry.partition].append(entry.entry_id)
            else:
                failed_partitions.add(entry.partition)
        published = sum(stored)
        metrics.PUBLISHED.inc(published)
        metrics.PUBLISH_FAILED.inc(len(stored) - published)
        try:
            await self._notify([pair for pair, ok in zip(batch_docs, stored, strict=True) if ok])
        except RedisError as exc:
            # Published, no notices yet (or some): the round is read again, its notices sent again.
            log.warning("notices_failed", error=repr(exc))
            self._retry_pending(entries)
            return True
        try:
            await self._outbox.remove(done)
        except RedisError as exc:
            # Published but still in the outbox: re-published later and dropped as duplicates.
            log.warning("outbox_remove_failed", error=repr(exc), entries=sum(map(len, done.values())))
            self._retry_pending(entries)
            return True
        self._advance(entries, failed_partitions)
        return bool(failed_partitions)

    async def _notify(self, stored: list[tuple[Entry, dict[str, Any]]]) -> None:
        """The per-bidder notices of the events JetStream stored, in outbox order."""
        if self._notices is None or not stored:
            return
        leaders = ((e, doc, e.previous_leader.decode() if e.previous_leader else None) for e, doc in stored)
        ttl_ms = int(self._settings.notice_bidders_ttl_seconds * 1000)
        calls = plan_notices(((e.partition, doc, leader) for e, doc, leader in leaders), ttl_ms)
        metrics.NOTICES_SENT.inc(await self._notices.send(calls))

    def _advance(self, entries: dict[int, list[Entry]], failed: set[int]) -> None:
        for p, rows in entries.items():
            if p in failed:
                self._cursors[p] = OWN_PENDING
            elif not rows:
                self._cursors[p] = NEW  # nothing (more) pending here
            elif self._cursors[p] != NEW:
                self._cursors[p] = rows[-1].entry_id.decode()

    def _retry_pending(self, entries: dict[int, list[Entry]]) -> None:
        for p in entries:
            self._cursors[p] = OWN_PENDING

    async def _claim(self) -> None:
        settings = self._settings
        self._next_claim = time.monotonic() + settings.claim_interval_seconds
        claimed = await self._outbox.claim(settings.claim_idle_seconds)
        for p, count in claimed.items():
            self._cursors[p] = OWN_PENDING
            metrics.CLAIMED.inc(count)
            log.info("entries_claimed", partition=p, entries=count)
        removed = await self._outbox.forget_stale_consumers(settings.stale_consumer_seconds)
        if removed:
            log.info("stale_consumers_removed", consumers=removed)

    def _bad(self, entry: Entry, exc: BadEntry) -> tuple[Entry, str]:
        """Count and log an entry that can never become an event; it goes to the dead letters once
        rather than staying pending, where every claim would pick it up again, forever."""
        metrics.BAD_ENTRIES.inc()
        log.error("dead_letter", partition=entry.partition, entry_id=entry.entry_id.decode(), error=str(exc))
        return entry, str(exc)

    def checkpoint(self, point: str) -> None:
        """A round reached `point` ("before_publish", "after_publish"): the two moments where a crash
        leaves entries pending or published twice. Does nothing; the kill tests (tests/faults.py)
        replace it to die there like a SIGKILLed process."""


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
