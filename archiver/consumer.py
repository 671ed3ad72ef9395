"""The archiver's ingest loop: fetch a batch, commit it in one transaction, then ack it.

One loop per stream (`Source`): the events (`AUCTION`) and the hidden maximums' audit records
(`AUCTION_AUDIT`, never public), each with its own durable consumer and writer connection, so neither
waits for the other.

The order is the whole guarantee. Commit before ack: a crash in between redelivers events that are then
skipped as already archived. Nothing is acked unless its transaction committed: with PostgreSQL down or
frozen the batch stays in hand and is retried with growing pauses, its acks deadlines extended so
JetStream does not hand it to anyone else meanwhile, and no new batch is fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from archiver import metrics
from archiver.audit import audit_rows_of
from archiver.errors import ArchiveUnavailable
from archiver.events import DeadLetter, Incoming, Rows, rows_of
from archiver.pull import Delivery, PullConsumer
from archiver.writer import PoisonRows, Written

if TYPE_CHECKING:
    from collections.abc import Callable

    from nats.aio.client import Client as NatsClient

    from archiver.settings import ArchiverSettings
    from archiver.writer import ArchiveWriter

log = structlog.get_logger(__name__)
IDLE_PAUSE_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Source:
    """One stream the archiver consumes: its durable consumer and how its messages become rows."""

    stream: str
    durable: str
    filter_subject: str
    description: str
    rows_of: Callable[[list[Incoming]], Rows]


def event_source(settings: ArchiverSettings) -> Source:
    description = "The archiver: every event into PostgreSQL"
    return Source(settings.stream, settings.durable, settings.filter_subject, description, rows_of)


def audit_source(settings: ArchiverSettings) -> Source:
    description = "The archiver: every audit record (hidden maximums, NOT PUBLIC) into PostgreSQL"
    return Source(
        settings.audit_stream,
        settings.audit_durable,
        settings.audit_filter_subject,
        description,
        audit_rows_of,
    )


def consumer_config(settings: ArchiverSettings, source: Source | None = None) -> api.ConsumerConfig:
    source = source or event_source(settings)
    return api.ConsumerConfig(
        durable_name=source.durable,
        description=source.description,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=-1,  # never give up on a message: giving up would lose it
        max_ack_pending=settings.max_ack_pending,
        filter_subject=source.filter_subject,
    )


class EventConsumer:
    def __init__(
        self, settings: ArchiverSettings, nc: NatsClient, writer: ArchiveWriter, source: Source | None = None
    ) -> None:
        self._settings = settings
        self._source = source or event_source(settings)
        self._js = nc.jetstream()
        self._pull = PullConsumer(nc, self._source.stream, self._source.durable)
        self._writer = writer

    async def subscribe(self, stop: asyncio.Event) -> bool:
        """Create or update the durable consumer and listen for its deliveries; waits for the stream."""
        settings, source = self._settings, self._source
        delay = settings.retry_initial_seconds
        while not stop.is_set():
            try:
                await self._js.add_consumer(source.stream, consumer_config(settings, source))
                await self._pull.start()
                log.info("consumer_bound", stream=source.stream, durable=source.durable)
                return True
            except nats.js.errors.NotFoundError:
                log.info("waiting_for_stream", stream=source.stream, retry_in=delay)  # the relay makes it
            except (nats.errors.Error, OSError) as exc:
                log.warning("consumer_not_ready", error=repr(exc), retry_in=delay)
            await _pause(stop, delay)
            delay = min(delay * 2, settings.retry_max_seconds)
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Archive until `stop` is set; a batch in hand is committed and acked before returning."""
        settings = self._settings
        delay = settings.retry_initial_seconds
        while not stop.is_set():
            asked = time.monotonic()
            try:
                deliveries = await self._pull.fetch(settings.batch_size, settings.fetch_timeout_seconds)
            except (nats.errors.Error, OSError) as exc:
                log.warning("fetch_failed", error=repr(exc), retry_in=delay)
                await _pause(stop, delay)
                delay = min(delay * 2, settings.retry_max_seconds)
                continue
            delay = settings.retry_initial_seconds
            metrics.BACKLOG.labels(self._source.stream).set(deliveries[-1].pending if deliveries else 0)
            if deliveries:
                await self._archive(deliveries, stop)
            elif time.monotonic() - asked < IDLE_PAUSE_SECONDS:
                await _pause(stop, IDLE_PAUSE_SECONDS)  # refused at once (e.g. 409 limits): don't spin

    async def _archive(self, deliveries: list[Delivery], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        incoming = [Incoming(d.stream_seq, d.subject, d.data) for d in deliveries]
        written = await self._commit(incoming, deliveries, stop)
        if written is None:
            return  # shutting down with PostgreSQL away: left unacked, JetStream redelivers it later
        self.checkpoint("after_commit")
        try:
            await self._pull.ack(deliveries)
        except (nats.errors.Error, OSError) as exc:
            # Committed but not acked: redelivered and skipped as a duplicate. Harmless.
            log.warning("ack_failed", error=repr(exc))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(deliveries))

    async def _commit(
        self, incoming: list[Incoming], deliveries: list[Delivery], stop: asyncio.Event
    ) -> Written | None:
        """Commit the batch, retrying until it works; None if `stop` came and the grace ran out."""
        settings = self._settings
        rows = self._source.rows_of(incoming)
        delay = settings.retry_initial_seconds
        held_since = time.monotonic()
        give_up_at: float | None = None
        while True:
            try:
                written = await self._write(rows, incoming)
            except ArchiveUnavailable as exc:
                metrics.WRITE_FAILURES.inc()
                log.warning("archive_unavailable", error=str(exc), batch=len(incoming), retry_in=delay)
            else:
                self._count(rows, written)
                return written
            now = time.monotonic()
            if stop.is_set():
                give_up_at = give_up_at or now + settings.shutdown_grace_seconds
                if now >= give_up_at:
                    log.warning("batch_left_unacked", batch=len(incoming))
                    return None
            if now - held_since > settings.ack_wait_seconds / 2:
                held_since = now
                with contextlib.suppress(nats.errors.Error, OSError):
                    await self._pull.in_progress(deliveries)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.retry_max_seconds)

    async def _write(self, rows: Rows, incoming: list[Incoming]) -> Written:
        try:
            return await self._writer.write(rows)
        except PoisonRows as exc:
            log.error("batch_refused_by_postgres", error=str(exc), batch=len(incoming))
        # One message at a time, so only the refused ones end up as dead letters.
        totals = Written()
        for message in incoming:
            single = self._source.rows_of([message])
            try:
                written = await self._writer.write(single)
            except PoisonRows as exc:
                dead = Rows(dead=[DeadLetter(message.stream_seq, message.subject, message.data, str(exc))])
                written = await self._writer.write(dead)
            totals += written
        return totals

    def _count(self, rows: Rows, written: Written) -> None:
        metrics.ARCHIVED.labels("items").inc(written.items)
        metrics.ARCHIVED.labels("bids").inc(written.bids)
        metrics.ARCHIVED.labels("extensions").inc(written.extensions)
        metrics.ARCHIVED.labels("auction_results").inc(written.results)
        metrics.ARCHIVED.labels("other_events").inc(written.others)
        metrics.ARCHIVED.labels("maximum_audit").inc(written.audits)
        metrics.DEAD_LETTERS.inc(written.dead)
        attempted = len(rows) - len(rows.dead)
        metrics.DUPLICATES.inc(max(attempted - written.events, 0))
        if rows.dead:
            log.error("dead_letters", count=len(rows.dead), first_error=rows.dead[0].error)

    def checkpoint(self, point: str) -> None:
        """A batch reached `point` ("after_commit": stored, not yet acked), where a crash means
        redeliveries. Does nothing; the kill tests (tests/faults.py) replace it to die there."""


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
