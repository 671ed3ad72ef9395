"""One Redis Pub/Sub connection per process, shared by every item this process serves.

Each item's channel is subscribed once, by its feed, however many viewers it has (the feed registry
counts them). Messages are handed to the channel's listener as raw bytes. Every subscription
confirmation is handed on too, and that is how a lost connection is repaired: redis-py reconnects and
subscribes again, each listener hears the new confirmation and reads what it missed from the item's
history stream (a message published while the connection was down is otherwise gone for good).

Flavours, matching the bidder: PUBLISH/SUBSCRIBE; SPUBLISH/SSUBSCRIBE on a single server
(`sharded_pubsub`); and on Redis Cluster, SSUBSCRIBE through redis-py's `ClusterPubSub`, which keeps one
connection per node owning a subscribed channel's hash tag. It reads those connections one after the
other, each with a timeout, so the timeout is kept short (`_CLUSTER_POLL_SECONDS`): it bounds how long a
message on one node waits while another node is being read. It also lists a node's connection before
that connection exists (the first SSUBSCRIBE to the node in flight) and after it closed it (the node's
last SUNSUBSCRIBE); reading it then raises a RuntimeError that only means "look again". And it may keep
a channel after dropping its node's connection, and then returns at once without reading anything: the
reader pauses instead of spinning, which would starve the event loop (SIGTERM included).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import redis.exceptions
import structlog
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from fanout.metrics import FanoutMetrics

log = structlog.get_logger(__name__)
_MESSAGE_TYPES = frozenset({"message", "smessage"})
_SUBSCRIBED_TYPES = frozenset({"subscribe", "ssubscribe"})
_RETRY_MIN, _RETRY_MAX = 0.05, 2.0
_CLUSTER_POLL_SECONDS = 0.01


class Listener(Protocol):
    def on_message(self, data: bytes) -> None: ...

    def on_subscribed(self) -> None:
        """A (re)subscription was confirmed: anything published before it may have been missed."""


class Subscriber:
    """Subscribes channels on demand and routes their messages; reconnects by itself."""

    def __init__(self, redis: Redis | RedisCluster, *, sharded: bool, metrics: FanoutMetrics) -> None:
        self._cluster = isinstance(redis, RedisCluster)
        self._sharded = sharded or self._cluster
        self._pubsub: PubSub = redis.pubsub()
        self._metrics = metrics
        self._listeners: dict[bytes, Listener] = {}
        # SUBSCRIBE and UNSUBSCRIBE of one channel must reach Redis in the order they were asked for.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.healthy = False

    async def start(self) -> None:
        if not self._cluster:
            await self._pubsub.connect()  # type: ignore[no-untyped-call]
        self.healthy = True
        self._task = asyncio.get_running_loop().create_task(self._read_forever(), name="pubsub-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Route `channel` to `listener`; its `on_subscribed` runs once Redis confirms."""
        self._listeners[channel.encode()] = listener
        async with self._lock:
            if self._sharded:
                await self._pubsub.ssubscribe(channel)
            else:
                await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._listeners.pop(channel.encode(), None)
        async with self._lock:
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                if self._sharded:
                    await self._pubsub.sunsubscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)

    async def _next(self) -> dict[str, Any] | None:
        if self._cluster:
            assert isinstance(self._pubsub, ClusterPubSub)
            if not self._pubsub.shard_channels:
                await asyncio.sleep(0.05)
                return None
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                message: dict[str, Any] | None = await self._pubsub.get_sharded_message(
                    timeout=_CLUSTER_POLL_SECONDS
                )
            except RuntimeError as exc:
                self._after_cluster_race(exc)
                message = None
            if message is None and loop.time() - started < _CLUSTER_POLL_SECONDS:
                # Nothing was read from any node (e.g. it still lists a channel whose node connection
                # it has already dropped): without a pause this loop would never yield to the others.
                await asyncio.sleep(_CLUSTER_POLL_SECONDS)
            return message
        return await self._pubsub.get_message(timeout=None)  # type: ignore[no-any-return]

    def _after_cluster_race(self, exc: RuntimeError) -> None:
        """Recover from what `ClusterPubSub` raises when its node list changes under a read.

        "pubsub connection not set": a node's connection listed but not (or no longer) connected.
        "... StopIteration": its round-robin generator over the nodes ran out while the list was empty
        for a moment, and stays exhausted; a fresh one is put in its place. Anything else is a bug.
        """
        text = str(exc)
        if "StopIteration" in text:
            pubsub = self._pubsub
            assert isinstance(pubsub, ClusterPubSub)
            setattr(pubsub, "_pubsubs_generator", ClusterPubSub._pubsubs_generator(pubsub))  # noqa: B010
        elif "connection not set" not in text:
            raise exc

    async def _read_forever(self) -> None:
        delay = _RETRY_MIN
        while True:
            try:
                message = await self._next()
            except (redis.exceptions.RedisError, OSError) as exc:
                self.healthy = False
                self._metrics.redis_errors.inc()
                log.warning("pubsub_error", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX, delay * 2)
                continue
            if message is None:
                continue
            self.healthy = True
            delay = _RETRY_MIN
            kind = message["type"]
            if kind in _MESSAGE_TYPES:
                listener = self._listeners.get(message["channel"])
                if listener is not None:
                    listener.on_message(message["data"])
            elif kind in _SUBSCRIBED_TYPES:
                listener = self._listeners.get(message["channel"])
                if listener is not None:
                    listener.on_subscribed()
