"""One viewer's connection, from the handshake to its close: catch up, then live, with no gap.

The viewer registers with the item's feed first (a `Joiner`: from now on every event the feed delivers
is buffered for it), then catches up, then sends its buffer and goes live in one step without awaiting
in between. Catching up:

- no `since`: the snapshot (`seq` S), then the events between S and the feed's position at
  registration, if the snapshot was older (a coalesced snapshot call may have started earlier);
- `since`: the events after `since` from the history stream, up to the feed's position at registration;
  when the history no longer holds them, or `since` is beyond anything the item has, `reset` + snapshot.

Events in the buffer at or below what was already sent are dropped, so each `seq` goes out once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from auction_contract.rules import ITEM_ID_PATTERN
from fanout.errors import FanoutError, HistoryGone, ItemNotFound, closing_for
from fanout.frames import RESET, error_frame, event_frames

if TYPE_CHECKING:
    from fanout.connection import ViewerConnection
    from fanout.feed import ItemFeed, Joiner
    from fanout.history import History
    from fanout.metrics import FanoutMetrics
    from fanout.registry import FeedRegistry
    from fanout.snapshots import SnapshotSource


class Sessions:
    """Serves viewers with the process's shared parts; `serve` is the websockets handler."""

    def __init__(
        self,
        feeds: FeedRegistry,
        history: History,
        snapshots: SnapshotSource,
        metrics: FanoutMetrics,
        batch_max: int,
    ) -> None:
        self._feeds = feeds
        self._history = history
        self._snapshots = snapshots
        self._metrics = metrics
        self._batch_max = batch_max

    async def serve(self, viewer: ViewerConnection) -> None:
        # The handshake's headers are never read again; an idle viewer should cost as little as it can.
        if viewer.request is not None:
            viewer.request.headers.clear()
        if viewer.response is not None:
            viewer.response.headers.clear()
        self._metrics.viewers.inc()
        try:
            await self._serve(viewer)
        except ConnectionClosed:
            pass
        finally:
            self._metrics.viewers.dec()

    async def _serve(self, viewer: ViewerConnection) -> None:
        if not ITEM_ID_PATTERN.fullmatch(viewer.item_id):
            await self._refuse(viewer, ItemNotFound(viewer.item_id))
            return
        try:
            feed = await self._feeds.acquire(viewer.item_id)
        except FanoutError as exc:
            await self._refuse(viewer, exc)
            return
        joiner = feed.add_joiner()
        try:
            try:
                cursor = await self._catch_up(viewer, feed, joiner)
                await self._go_live(viewer, feed, joiner, cursor)
            except FanoutError as exc:
                await self._refuse(viewer, exc)
                return
            await viewer.wait_closed()
        finally:
            feed.remove(viewer, joiner)
            await self._feeds.release(feed)

    async def _catch_up(self, viewer: ViewerConnection, feed: ItemFeed, joiner: Joiner) -> int:
        """Send the snapshot or the replay; return the last `seq` sent (or the snapshot's)."""
        since, start = viewer.since, joiner.start
        if since is None:
            cursor = await self._snapshot(viewer, reset=False)
        elif start == 0 or (since > start and since > await self._history.head(feed.item_id)):
            # No history at all (unknown item: the snapshot call says so) or a `since` from the future.
            cursor = await self._snapshot(viewer, reset=True)
        else:
            cursor = since
        if cursor < start and not await self._replay(viewer, feed.item_id, cursor, start):
            if since is None or cursor != since:
                raise HistoryGone(feed.item_id)
            cursor = await self._snapshot(viewer, reset=True)
            if cursor < start and not await self._replay(viewer, feed.item_id, cursor, start):
                raise HistoryGone(feed.item_id)
        return max(cursor, 0)

    async def _go_live(self, viewer: ViewerConnection, feed: ItemFeed, joiner: Joiner, cursor: int) -> None:
        """Send what the feed buffered meanwhile; when nothing is left, switch to the broadcast set."""
        while True:
            if joiner.failed:
                raise HistoryGone(feed.item_id)
            if not joiner.buffer:
                break
            buffered, joiner.buffer = joiner.buffer, []
            events = [e for e in buffered if e.seq > cursor]
            if not events:
                continue
            if events[0].seq != cursor + 1 and not await self._replay(
                viewer, feed.item_id, cursor, events[0].seq - 1
            ):
                raise HistoryGone(feed.item_id)
            for frame in event_frames(events, self._batch_max):
                await viewer.send(frame, text=True)
            cursor = events[-1].seq
        feed.promote(joiner, viewer)  # no await since the buffer was found empty

    async def _snapshot(self, viewer: ViewerConnection, *, reset: bool) -> int:
        snapshot = await self._snapshots.get(viewer.item_id)
        if reset:
            self._metrics.resets.inc()
            await viewer.send(RESET, text=True)
        await viewer.send(snapshot.frame, text=True)
        return snapshot.seq

    async def _replay(self, viewer: ViewerConnection, item_id: str, after: int, upto: int) -> bool:
        """Send events `after+1..upto` from the history; False (nothing sent) if they were trimmed."""
        while after < upto:
            events = await self._history.read(item_id, after + 1, upto)
            if not events or events[0].seq != after + 1:
                return False
            for frame in event_frames(events, self._batch_max):
                await viewer.send(frame, text=True)
            self._metrics.replays.inc(len(events))
            after = events[-1].seq
        return True

    async def _refuse(self, viewer: ViewerConnection, exc: FanoutError) -> None:
        closing = closing_for(exc)
        self._metrics.closed.labels(closing.error_code or "history-gone").inc()
        with contextlib.suppress(ConnectionClosed):
            if closing.error_code is not None:
                await viewer.send(error_frame(closing.error_code, str(exc)), text=True)
            await viewer.close(closing.code, closing.reason)
