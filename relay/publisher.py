"""JetStream side of the relay: the streams' definitions and batch publishing.

Two streams (`relay/route.py` says why): `AUCTION`, the public events, and `AUCTION_AUDIT`, the hidden
maximums' audit records, with the same limits. A batch is published without waiting per message and its
acks are then awaited together, with one deadline for the whole batch. Only the entries all of whose
messages were acked count as published; everything else stays in the outbox and is retried, and
`Nats-Msg-Id` makes the retry harmless (each stream deduplicates its own messages).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import orjson
import structlog
from nats.js import api

from relay import metrics

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from relay.route import Outgoing
    from relay.settings import RelaySettings

log = structlog.get_logger(__name__)
MSG_ID = "Nats-Msg-Id"
# JetStream refuses the message unless this stream would store it (not another one on the subject).
EXPECTED_STREAM = "Nats-Expected-Stream"
STORED = "stored"
DUPLICATE = "duplicate"
# JetStream answers this when a stream exists with another configuration.
_STREAM_NAME_IN_USE = 10058


def stream_config(settings: RelaySettings) -> api.StreamConfig:
    """The `AUCTION` stream: file storage, per-message dedup window, limits that keep it bounded."""
    description = "Auction events (proto/auction/v1/events.proto); written by the outbox relay."
    return _config(settings, settings.stream, settings.subject_prefix, description)


def audit_stream_config(settings: RelaySettings) -> api.StreamConfig:
    """The `AUCTION_AUDIT` stream: like `AUCTION`, for the audit records only. NOT PUBLIC."""
    description = (
        "AUDIT ONLY, NOT PUBLIC: hidden maximums (proto/auction/v1/audit.proto) for the archive; "
        "grant it to the archiver alone."
    )
    return _config(settings, settings.audit_stream, settings.audit_subject_prefix, description)


def _config(settings: RelaySettings, name: str, prefix: str, description: str) -> api.StreamConfig:
    return api.StreamConfig(
        name=name,
        description=description,
        subjects=[f"{prefix}.>"],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.duplicate_window_seconds,
        max_age=settings.stream_max_age_seconds,
        max_bytes=settings.stream_max_bytes,
        discard=api.DiscardPolicy.OLD,
        # persist_mode stays unset (the server's default: ack after the write); "async" would ack
        # from memory and could lose acknowledged events, which the relay has already deleted.
    )


async def ensure_streams(js: JetStreamContext, settings: RelaySettings) -> list[api.StreamInfo]:
    """Create both streams, or bring existing ones to this configuration."""
    return [await _ensure(js, config) for config in (stream_config(settings), audit_stream_config(settings))]


async def _ensure(js: JetStreamContext, config: api.StreamConfig) -> api.StreamInfo:
    try:
        return await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
    log.info("stream_updated", stream=config.name)
    return await js.update_stream(config)


class BatchPublisher:
    """JetStream publishing by batch on the core client, one write for the whole batch.

    `JetStreamContext.publish_async` yields to the event loop once per message (it awaits a semaphore),
    so the client's flusher sends every message in its own syscall; at thousands of events per second
    that was most of the relay's CPU. Here a batch is queued without yielding and goes out in one write;
    acks come back on one wildcard inbox and resolve one future per message.
    """

    def __init__(self, nc: NatsClient, ack_timeout: float) -> None:
        self._nc = nc
        self._ack_timeout = ack_timeout
        self._inbox = nc.new_inbox()
        self._sequence = 0
        self._waiting: dict[str, asyncio.Future[str]] = {}

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    async def publish(self, batch: Sequence[Sequence[Outgoing]]) -> list[bool]:
        """Publish every group's messages in order, then wait (at most `ack_timeout` in all) for the acks;
        one answer per group, True = all of its messages stored (a group is one outbox entry's).

        A duplicate ack (JetStream had the id already) also counts as stored: that is the retry case.
        """
        sizes = [len(group) for group in batch]
        flat = [message for group in batch for message in group]
        stored = iter(await self._publish(flat))
        return [all([next(stored) for _ in range(size)]) for size in sizes]

    async def _publish(self, batch: Sequence[Outgoing]) -> list[bool]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[str]] = []
        replies: list[str] = []
        try:
            for message in batch:
                self._sequence += 1
                reply = f"{self._inbox}.{self._sequence}"
                future: asyncio.Future[str] = loop.create_future()
                self._waiting[reply] = future
                futures.append(future)
                replies.append(reply)
                headers = {MSG_ID: message.msg_id, EXPECTED_STREAM: message.stream}
                await self._nc.publish(message.subject, message.payload, reply=reply, headers=headers)
            if futures:
                await asyncio.wait(futures, timeout=self._ack_timeout)
        except (nats.errors.Error, OSError) as exc:
            log.warning("publish_failed", error=repr(exc), sent=len(futures), batch=len(batch))
        finally:
            for reply in replies:
                self._waiting.pop(reply, None)
        answers = [f.result() if f.done() else "" for f in futures]
        results = [answer in (STORED, DUPLICATE) for answer in answers]
        metrics.DUPLICATES.inc(answers.count(DUPLICATE))
        errors = [answer for answer in answers if answer not in (STORED, DUPLICATE, "")]
        if errors:
            log.warning("publish_rejected", count=len(errors), first=errors[0])
        missing = sum(1 for f in futures if not f.done())
        if missing:
            log.warning("publish_unacknowledged", count=missing, batch=len(batch), waited=self._ack_timeout)
        for future in futures:
            future.cancel()
        results.extend([False] * (len(batch) - len(futures)))
        return results

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject, None)
        if future is not None and not future.done():
            future.set_result(_ack_answer(msg))

    async def close(self) -> None:
        """Close the connection (acks still pending no longer matter: those entries are retried)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._nc.close(), timeout=5)


def _ack_answer(msg: Msg) -> str:
    """STORED, DUPLICATE (stored before: a retry), or why JetStream did not store the message."""
    if msg.headers and msg.headers.get("Status") == "503":
        return "no responders: the stream is not available"
    try:
        answer = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return f"unreadable ack: {msg.data[:100]!r}"
    if "error" in answer:
        return str(answer["error"]) or "error"
    return DUPLICATE if answer.get("duplicate") else STORED
