"""The fan-out's shared Pub/Sub connection when an item's old feed stops while its new feed starts.

Found by the chaos experiment: a viewer refused (its snapshot failed while the bidder was down) left an
item's feed with no viewer, and viewers arriving at that moment started a new feed for the item; the old
feed's stop then removed the new feed's listener and unsubscribed the channel, so those viewers got
their snapshot and then no event ever again (not even the close). Against a real Redis.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_asyncio

from devstack.servers import RedisServer
from fanout.metrics import FanoutMetrics
from fanout.pubsub import Subscriber
from tests.conftest import scaled


class Heard:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.confirmed = asyncio.Event()
        self.arrived = asyncio.Event()

    def on_message(self, data: bytes) -> None:
        self.messages.append(data)
        self.arrived.set()

    def on_subscribed(self) -> None:
        self.confirmed.set()


async def _subscriber(url: str) -> tuple[redis_asyncio.Redis, Subscriber]:
    client = redis_asyncio.Redis.from_url(url)
    subscriber = Subscriber(client, sharded=False, metrics=FanoutMetrics())
    await subscriber.start()
    return client, subscriber


async def test_an_old_feeds_stop_leaves_the_new_feed_of_the_item_subscribed(
    redis_server: RedisServer,
) -> None:
    client, subscriber = await _subscriber(redis_server.url)
    try:
        old, new = Heard(), Heard()
        await subscriber.subscribe("item:x", old)
        await asyncio.wait_for(old.confirmed.wait(), scaled(5))
        # The new feed registers and is confirmed before the old one's stop gets to unsubscribe.
        await subscriber.subscribe("item:x", new)
        await asyncio.wait_for(new.confirmed.wait(), scaled(5))
        assert await subscriber.unsubscribe("item:x", old) is False
        await client.publish("item:x", b"after")
        await asyncio.wait_for(new.arrived.wait(), scaled(5))
        assert new.messages == [b"after"]
        assert old.messages == []
        # Its own stop does unsubscribe, and a later feed of the item subscribes afresh.
        assert await subscriber.unsubscribe("item:x", new) is True
        later = Heard()
        await subscriber.subscribe("item:x", later)
        await asyncio.wait_for(later.confirmed.wait(), scaled(5))
        await client.publish("item:x", b"later")
        await asyncio.wait_for(later.arrived.wait(), scaled(5))
        assert new.messages == [b"after"]
    finally:
        await subscriber.stop()
        await client.aclose()


async def test_a_new_feed_registering_while_the_old_one_waits_to_unsubscribe_keeps_the_channel(
    redis_server: RedisServer,
) -> None:
    """The old feed's UNSUBSCRIBE is not sent when a newer listener registered while it waited for the
    subscriber's lock: the channel stays subscribed for the newer one."""
    client, subscriber = await _subscriber(redis_server.url)
    try:
        old, new = Heard(), Heard()
        await subscriber.subscribe("item:y", old)
        await asyncio.wait_for(old.confirmed.wait(), scaled(5))
        async with subscriber._lock:  # the old feed's stop waits here, as it would behind another call
            stopping = asyncio.create_task(subscriber.unsubscribe("item:y", old))
            await asyncio.sleep(0)
            subscribing = asyncio.create_task(subscriber.subscribe("item:y", new))
            await asyncio.sleep(0)
        assert await stopping is True
        await subscribing
        await asyncio.wait_for(new.confirmed.wait(), scaled(5))
        await client.publish("item:y", b"still here")
        await asyncio.wait_for(new.arrived.wait(), scaled(5))
        assert new.messages == [b"still here"]
    finally:
        await subscriber.stop()
        await client.aclose()
