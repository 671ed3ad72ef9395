"""The process's per-bidder notice feeds, one per bidder with a `/ws/me` connection here, reference counted.

The relay publishes each notice on the bidder's channel (`auction_contract.redis_layout.notice_channel`);
the first connection of a bidder subscribes it, later ones (a second tab, a phone) share it, the last one
to leave unsubscribes. Notices are fire-and-forget Pub/Sub: a bidder hears those published while
connected, each with `server_time` added, on every one of their connections.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from websockets.asyncio.server import broadcast

from auction_contract.redis_layout import notice_channel
from fanout.errors import CLOSE_TRY_AGAIN_LATER, UpstreamUnavailable
from fanout.frames import notice_frame

if TYPE_CHECKING:
    from fanout.connection import ViewerConnection
    from fanout.metrics import FanoutMetrics
    from fanout.pubsub import Subscriber


class BidderFeed:
    """One bidder's subscription and live connections (a `pubsub.Listener`)."""

    def __init__(self, bidder: str, metrics: FanoutMetrics) -> None:
        self.bidder = bidder
        self.channel = notice_channel(bidder)
        self.viewers: set[ViewerConnection] = set()
        self.subscribed = asyncio.Event()
        self.refs = 0
        self._metrics = metrics
        self._closing: set[asyncio.Task[None]] = set()

    def on_message(self, data: bytes) -> None:
        self._metrics.notices.inc()
        if self.viewers and data.startswith(b"{") and data.endswith(b"}"):
            broadcast(self.viewers, notice_frame(data), text=True)

    def on_subscribed(self) -> None:
        self.subscribed.set()

    def add(self, viewer: ViewerConnection) -> None:
        self.viewers.add(viewer)
        viewer.on_slow = self._on_slow

    def remove(self, viewer: ViewerConnection) -> None:
        self.viewers.discard(viewer)
        viewer.on_slow = None

    def _on_slow(self, viewer: ViewerConnection) -> None:
        # Called inside a transport write, maybe while `broadcast` iterates `viewers`: leave it after.
        asyncio.get_running_loop().call_soon(self._drop, viewer)

    def _drop(self, viewer: ViewerConnection) -> None:
        if viewer not in self.viewers:
            return
        self.remove(viewer)
        self._metrics.closed.labels("slow").inc()
        task = asyncio.get_running_loop().create_task(viewer.close(CLOSE_TRY_AGAIN_LATER, "too slow"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class NoticeHub:
    def __init__(self, subscriber: Subscriber, metrics: FanoutMetrics, subscribe_timeout: float) -> None:
        self._subscriber = subscriber
        self._metrics = metrics
        self._timeout = subscribe_timeout
        self._feeds: dict[str, BidderFeed] = {}

    async def acquire(self, bidder: str) -> BidderFeed:
        """The bidder's feed, its subscription confirmed by Redis; release it exactly once."""
        feed = self._feeds.get(bidder)
        if feed is None:
            feed = self._feeds[bidder] = BidderFeed(bidder, self._metrics)
            feed.refs += 1
            try:
                await self._subscriber.subscribe(feed.channel, feed)
            except Exception as exc:
                await self.release(feed)
                raise UpstreamUnavailable(f"cannot subscribe to notices: {exc}") from exc
        else:
            feed.refs += 1
        try:
            async with asyncio.timeout(self._timeout):
                await feed.subscribed.wait()
        except TimeoutError:
            await self.release(feed)
            raise UpstreamUnavailable("Redis did not confirm the notice subscription") from None
        except BaseException:
            await self.release(feed)
            raise
        return feed

    async def release(self, feed: BidderFeed) -> None:
        feed.refs -= 1
        if feed.refs > 0:
            return
        if self._feeds.get(feed.bidder) is feed:
            del self._feeds[feed.bidder]  # before any await: a newcomer starts a fresh feed
        await self._subscriber.unsubscribe(feed.channel, feed)
