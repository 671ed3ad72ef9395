"""The process's feeds, one per item with viewers here, reference counted.

The first viewer of an item creates its feed (one Redis subscription), every later one shares it, and
the last one to leave stops it (unsubscribe). A feed being stopped is already out of the table, so a
viewer arriving meanwhile starts a fresh one; the subscriber's lock keeps the UNSUBSCRIBE of the old
feed ahead of the SUBSCRIBE of the new.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from auction_contract.redis_layout import item_keys
from fanout.feed import ItemFeed

if TYPE_CHECKING:
    from fanout.broadcast import Broadcaster
    from fanout.history import History
    from fanout.metrics import FanoutMetrics
    from fanout.pubsub import AnySubscriber
    from fanout.settings import FanoutSettings


class FeedRegistry:
    def __init__(
        self,
        settings: FanoutSettings,
        subscriber: AnySubscriber,
        history: History,
        broadcast: Broadcaster,
        metrics: FanoutMetrics,
    ) -> None:
        self._settings = settings
        self._subscriber = subscriber
        self._history = history
        self._broadcast = broadcast
        self._metrics = metrics
        self._feeds: dict[str, ItemFeed] = {}

    def get(self, item_id: str) -> ItemFeed | None:
        return self._feeds.get(item_id)

    async def acquire(self, item_id: str) -> ItemFeed:
        """The item's feed, subscribed and with its starting point read; release it exactly once."""
        feed = self._feeds.get(item_id)
        if feed is None:
            feed = ItemFeed(
                item_id,
                item_keys(item_id, self._settings.partitions).channel,
                history=self._history,
                broadcast=self._broadcast,
                metrics=self._metrics,
                min_interval=self._settings.min_frame_interval_ms / 1000,
                batch_max=self._settings.batch_max_events,
                max_duty=self._settings.max_broadcast_duty,
            )
            self._feeds[item_id] = feed
            self._metrics.items.set(len(self._feeds))
            await feed.start(self._subscriber)
        feed.refs += 1
        try:
            await asyncio.shield(feed.ready)
        except BaseException:
            await self.release(feed)
            raise
        return feed

    async def release(self, feed: ItemFeed) -> None:
        feed.refs -= 1
        if feed.refs > 0:
            return
        if self._feeds.get(feed.item_id) is feed:
            del self._feeds[feed.item_id]
            self._metrics.items.set(len(self._feeds))
        await feed.stop(self._subscriber)

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.stop(self._subscriber)
