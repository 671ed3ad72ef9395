"""One Redis Pub/Sub connection per process, shared by every item this process serves.

Each item's channel is subscribed once, by its feed, however many viewers it has (the feed registry
counts them). Messages are handed to the channel's listener as raw bytes. Every subscription
confirmation is handed on too, and that is how a lost connection is repaired: redis-py reconnects and
subscribes again, each listener hears the new confirmation and reads what it missed from the item's
history stream (a message published while the connection was down is otherwise gone for good).

Per-bidder notices (`/ws/me`) always use plain SUBSCRIBE, which a Redis Cluster delivers on every node:
`notice_subscriber_for` gives one connection for them (on a cluster, to one of its nodes).

Flavours, matching the bidder: PUBLISH/SUBSCRIBE; SPUBLISH/SSUBSCRIBE on a single server
(`sharded_pubsub`); and on Redis Cluster, SSUBSCRIBE on the master owning each channel's hash tag
(`ClusterSubscriber`): one plain `Subscriber` per master, each with its own connection and reader, so a
message on one node never waits for another node to be read.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import redis.exceptions
import structlog
from redis.asyncio import ConnectionPool, Redis

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub
    from redis.asyncio.cluster import RedisCluster

    from fanout.metrics import FanoutMetrics

log = structlog.get_logger(__name__)
_MESSAGE_TYPES = frozenset({"message", "smessage"})
_SUBSCRIBED_TYPES = frozenset({"subscribe", "ssubscribe"})
_RETRY_MIN, _RETRY_MAX = 0.05, 2.0


class Listener(Protocol):
    def on_message(self, data: bytes) -> None: ...

    def on_subscribed(self) -> None:
        """A (re)subscription was confirmed: anything published before it may have been missed."""


class Subscriber:
    """Subscribes channels on demand and routes their messages; reconnects by itself."""

    def __init__(self, redis: Redis, *, sharded: bool, metrics: FanoutMetrics) -> None:
        self._sharded = sharded
        self._pubsub: PubSub = redis.pubsub()
        self._metrics = metrics
        self._listeners: dict[bytes, Listener] = {}
        # SUBSCRIBE and UNSUBSCRIBE of one channel must reach Redis in the order they were asked for.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.healthy = False

    async def start(self) -> None:
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

    @property
    def channels(self) -> frozenset[bytes]:
        """The channels routed to a listener now."""
        return frozenset(self._listeners)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Route `channel` to `listener`; its `on_subscribed` runs once Redis confirms."""
        self._listeners[channel.encode()] = listener
        async with self._lock:
            if self._sharded:
                await self._pubsub.ssubscribe(channel)
            else:
                await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str, listener: Listener) -> bool:
        """Stop routing `channel` to `listener`; False (and the channel left as it is) when another
        listener holds it by now.

        A feed being stopped and a newer feed of the same item (a viewer arriving meanwhile) overlap: the
        new one may register, subscribe and be confirmed while the old one is still stopping. Removing
        the channel's listener or UNSUBSCRIBE-ing it then would leave the new feed deaf for good (its
        viewers get their snapshot and then nothing), so only the listener's own registration is removed,
        and UNSUBSCRIBE is sent only while nobody else has registered the channel."""
        key = channel.encode()
        if self._listeners.get(key) is not listener:
            return False
        del self._listeners[key]
        async with self._lock:
            if key in self._listeners:  # a newer listener arrived while this one waited: it keeps it
                return True
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                if self._sharded:
                    await self._pubsub.sunsubscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)
        return True

    async def _next(self) -> dict[str, Any] | None:
        return await self._pubsub.get_message(timeout=None)  # type: ignore[no-any-return]

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


class ClusterSubscriber:
    """Sharded Pub/Sub on Redis Cluster: each channel is subscribed on the master owning its slot.

    Per master, a plain `Subscriber` (connection, reader, reconnect and re-subscribe, all as on a single
    server) over a client built from the cluster's own connection settings (TLS, credentials). Healthy
    while every master's reader is. Slots moving to another master (resharding) are not followed.
    """

    def __init__(self, cluster: RedisCluster, *, metrics: FanoutMetrics) -> None:
        self._cluster = cluster
        self._metrics = metrics
        self._nodes: dict[str, tuple[Redis, Subscriber]] = {}
        self._node_of: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @property
    def healthy(self) -> bool:
        return all(subscriber.healthy for _, subscriber in self._nodes.values())

    async def start(self) -> None:
        await self._cluster.initialize()

    async def stop(self) -> None:
        for client, subscriber in self._nodes.values():
            await subscriber.stop()
            with contextlib.suppress(Exception):
                await client.aclose()
                await client.connection_pool.disconnect()
        self._nodes.clear()

    async def subscribe(self, channel: str, listener: Listener) -> None:
        name, subscriber = await self._subscriber_for(channel)
        # Recorded with no await before the listener registers: an old feed's unsubscribe running while
        # this one waited for a new master's connection must not pop the entry of this newer feed.
        self._node_of[channel] = name
        await subscriber.subscribe(channel, listener)

    async def unsubscribe(self, channel: str, listener: Listener) -> bool:
        name = self._node_of.get(channel)
        if name is None or name not in self._nodes:
            return False
        removed = await self._nodes[name][1].unsubscribe(channel, listener)
        if removed and channel.encode() not in self._nodes[name][1].channels:
            self._node_of.pop(channel, None)
        return removed

    async def _subscriber_for(self, channel: str) -> tuple[str, Subscriber]:
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise redis.exceptions.SlotNotCoveredError(f"no master serves channel {channel!r}")
        async with self._lock:  # two first viewers of two items on one new master: one connection
            entry = self._nodes.get(node.name)
            if entry is None:
                pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
                client = Redis(connection_pool=pool)
                subscriber = Subscriber(client, sharded=True, metrics=self._metrics)
                await subscriber.start()
                entry = self._nodes[node.name] = (client, subscriber)
        return node.name, entry[1]


AnySubscriber = Subscriber | ClusterSubscriber


def subscriber_for(redis: Redis | RedisCluster, *, sharded: bool, metrics: FanoutMetrics) -> AnySubscriber:
    """The subscriber matching the client: per-master sharded Pub/Sub on a cluster, else one connection."""
    if isinstance(redis, Redis):
        return Subscriber(redis, sharded=sharded, metrics=metrics)
    return ClusterSubscriber(redis, metrics=metrics)


class NodeSubscriber(Subscriber):
    """Plain Pub/Sub on one node of a Redis Cluster (chosen at start): a cluster-wide PUBLISH reaches
    every node's subscribers, so one connection hears every bidder's notices. Like `ClusterSubscriber`,
    it does not follow topology changes (a lost node is retried, not replaced)."""

    def __init__(self, cluster: RedisCluster, *, metrics: FanoutMetrics) -> None:
        self._cluster = cluster
        self._client: Redis | None = None
        super().__init__(Redis(), sharded=False, metrics=metrics)  # replaced at start, never connected

    async def start(self) -> None:
        await self._cluster.initialize()
        node = self._cluster.get_default_node() or self._cluster.get_random_node()
        pool = ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        self._client = Redis(connection_pool=pool)
        self._pubsub = self._client.pubsub()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
                await self._client.connection_pool.disconnect()


def notice_subscriber_for(redis: Redis | RedisCluster, *, metrics: FanoutMetrics) -> Subscriber:
    """Plain SUBSCRIBE for the bidders' notice channels: its own connection, beside the items' one."""
    if isinstance(redis, Redis):
        return Subscriber(redis, sharded=False, metrics=metrics)
    return NodeSubscriber(redis, metrics=metrics)
