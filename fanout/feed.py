"""One item's live feed in one process: its Redis subscription, its viewers, its order.

A feed exists while the item has viewers here (the registry counts them): the first viewer subscribes
the item's channel, the last one's departure unsubscribes it. Once subscribed, the feed reads the
history's newest `seq` as its starting point (`last_seq`); from then on it hands every later event to
its viewers exactly once and in order:

- Pub/Sub messages go through a `Sequencer`; a jump in `seq` (a message lost to a reconnect) is filled
  from the history stream before anything after it goes out, and every re-subscription triggers a
  history read from `last_seq + 1`, in case the lost message was the last one.
- Events that pile up while the previous frame was going out (or within `min_frame_interval_ms`)
  leave together as one batch frame: the per-viewer frame rate stays bounded, nothing is dropped.
  The pause also grows with the item's audience: after a frame that took `d` to hand out, the next one
  waits until at least `d / max_broadcast_duty` has passed, so a hot item with many viewers here takes
  at most that share of the process (its events go out in fewer, larger frames) and the rest is left
  for other items, pings and new viewers. A lone event after a quiet spell still goes out at once.
- Live viewers get frames through the broadcaster; joining viewers (still reading their snapshot or
  replay) get the same events appended to their `Joiner` buffer, to send once they are caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from fanout.errors import CLOSE_TRY_AGAIN_LATER, FanoutError
from fanout.frames import event_frames
from fanout.sequencing import Event, Sequencer, seq_of

if TYPE_CHECKING:
    from fanout.broadcast import Broadcaster
    from fanout.connection import ViewerConnection
    from fanout.history import History
    from fanout.metrics import FanoutMetrics
    from fanout.pubsub import AnySubscriber

log = structlog.get_logger(__name__)


class Joiner:
    """A viewer between connecting and going live: `start` is the feed's `last_seq` when it registered.

    Everything the feed delivers after registration lands in `buffer`, so the viewer needs from the
    history at most the events up to `start`.
    """

    __slots__ = ("buffer", "failed", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.buffer: list[Event] = []
        # Set when the feed skipped events it could not find: this viewer must start over.
        self.failed = False


def frame_pause(took: float, min_interval: float, max_duty: float) -> float:
    """The least pause before an item's next frame, after one that took `took` seconds to hand out."""
    return max(min_interval, took * (1 / max_duty - 1))


class ItemFeed:
    def __init__(
        self,
        item_id: str,
        channel: str,
        *,
        history: History,
        broadcast: Broadcaster,
        metrics: FanoutMetrics,
        min_interval: float,
        batch_max: int,
        max_duty: float = 1.0,
    ) -> None:
        self.item_id = item_id
        self.channel = channel
        self.viewers: set[ViewerConnection] = set()
        self.joiners: set[Joiner] = set()
        self.refs = 0
        self._history = history
        self._broadcast = broadcast
        self._metrics = metrics
        self._min_interval = min_interval
        self._max_duty = max_duty
        self._batch_max = batch_max
        self._sequencer = Sequencer()
        self._inbox: list[Event] = []
        self._catch_up = False
        self._wake = asyncio.Event()
        self._subscribed = asyncio.Event()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def last_seq(self) -> int:
        return self._sequencer.last

    # Called by the Pub/Sub reader (synchronously, in arrival order).

    def on_message(self, data: bytes) -> None:
        try:
            seq = seq_of(data)
        except ValueError:
            log.warning("bad_live_event", item_id=self.item_id)
            return
        self._metrics.events.inc()
        self._inbox.append(Event(seq, data))
        self._wake.set()

    def on_subscribed(self) -> None:
        if self._subscribed.is_set():
            self._catch_up = True  # a re-subscription: something may have been published meanwhile
            self._metrics.catch_ups.inc()
            self._wake.set()
        else:
            self._subscribed.set()

    # Lifecycle, driven by the registry.

    async def start(self, subscriber: AnySubscriber) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(subscriber), name=f"feed-{self.item_id}"
        )

    async def stop(self, subscriber: AnySubscriber) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.ready.done():
            self.ready.set_exception(FanoutError("feed stopped"))
            self.ready.exception()  # retrieved: nobody may be waiting any more
        await subscriber.unsubscribe(self.channel, self)

    async def _run(self, subscriber: AnySubscriber) -> None:
        try:
            await subscriber.subscribe(self.channel, self)
            await self._subscribed.wait()
            self._sequencer.skip_to(await self._history.head(self.item_id))
        except Exception as exc:  # handed to every viewer waiting for `ready`
            if not self.ready.done():
                self.ready.set_exception(exc if isinstance(exc, FanoutError) else FanoutError(str(exc)))
                self.ready.exception()  # each waiting viewer re-raises it; no "never retrieved" noise
            return
        self.ready.set_result(None)
        next_frame = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = next_frame - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            started = time.monotonic()
            try:
                await self._pump()
            except FanoutError as exc:
                log.warning("feed_history_failed", item_id=self.item_id, error=str(exc))
                self._catch_up = True
                await asyncio.sleep(0.2)
                self._wake.set()
            except Exception:  # a bug must not silence the item for every viewer: log, resync, go on
                log.exception("feed_pump_failed", item_id=self.item_id)
                self._catch_up = True
                await asyncio.sleep(0.2)
                self._wake.set()
            finished = time.monotonic()
            next_frame = finished + frame_pause(finished - started, self._min_interval, self._max_duty)

    async def _pump(self) -> None:
        sequencer = self._sequencer
        for event in self._inbox:
            sequencer.offer(event)
        self._inbox.clear()
        catch_up, self._catch_up = self._catch_up, False
        while True:
            if catch_up:
                # Read from the history until its end; again from the new start if it was trimmed.
                catch_up = not await self._fill(sequencer.last + 1, None)
                continue
            hole = sequencer.missing()
            if hole is None:
                break
            self._metrics.gap_fills.inc()
            await self._fill(*hole)
        self._deliver(sequencer.take_ready())

    async def _fill(self, first: int, last: int | None) -> bool:
        """Offer history events `first..last` (`None`: to the end); False when they were trimmed away."""
        while True:
            events = await self._history.read(self.item_id, first, last)
            if events and events[0].seq != first:
                self._history_gone(events[0].seq - 1)
                return False
            if not events and last is not None:
                self._history_gone(last)
                return False
            for event in events:
                self._sequencer.offer(event)
            if len(events) < self._history.page:
                return True
            first = events[-1].seq + 1
            self._deliver(self._sequencer.take_ready())

    def _history_gone(self, skip_to: int) -> None:
        """The hole is no longer in the history: every viewer starts over (resume -> reset + snapshot)."""
        log.warning("feed_history_gone", item_id=self.item_id, skip_to=skip_to)
        self._sequencer.skip_to(skip_to)
        for viewer in list(self.viewers):
            self.drop(viewer, CLOSE_TRY_AGAIN_LATER, "resume with since", "history-gone")
        for joiner in self.joiners:
            joiner.failed = True

    def _deliver(self, events: list[Event]) -> None:
        if not events:
            return
        if self.viewers:
            started = time.perf_counter()
            for frame in event_frames(events, self._batch_max):
                self._broadcast(self.viewers, frame)
                self._metrics.frames.inc()
            self._metrics.broadcast_seconds.observe(time.perf_counter() - started)
            if len(events) > 1:
                self._metrics.batched_events.inc(len(events))
        for joiner in self.joiners:
            joiner.buffer.extend(events)

    # Viewers.

    def add_joiner(self) -> Joiner:
        joiner = Joiner(self.last_seq)
        self.joiners.add(joiner)
        return joiner

    def promote(self, joiner: Joiner, viewer: ViewerConnection) -> None:
        """From joining to live; the caller has sent everything in the joiner's buffer."""
        self.joiners.discard(joiner)
        self.viewers.add(viewer)
        viewer.on_slow = self._on_slow

    def remove(self, viewer: ViewerConnection, joiner: Joiner | None) -> None:
        self.viewers.discard(viewer)
        viewer.on_slow = None
        if joiner is not None:
            self.joiners.discard(joiner)

    def _on_slow(self, viewer: ViewerConnection) -> None:
        # Called from inside a transport write, i.e. possibly while a broadcast iterates `viewers`:
        # the set must not change under it, so the viewer leaves it right after.
        asyncio.get_running_loop().call_soon(self.drop, viewer, CLOSE_TRY_AGAIN_LATER, "too slow", "slow")

    def drop(self, viewer: ViewerConnection, code: int, reason: str, label: str) -> None:
        """Stop sending to `viewer` now and close it in the background."""
        if viewer not in self.viewers:
            return
        self.viewers.discard(viewer)
        viewer.on_slow = None
        self._metrics.closed.labels(label).inc()
        task = asyncio.get_running_loop().create_task(viewer.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
