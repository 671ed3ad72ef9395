"""Group commit: concurrent bids share one Redis round trip and one Lua call per item.

While a flush is in flight, arriving bids queue; the next flush takes the whole queue (up to
`max_batch`), groups it by item in arrival order and hands it to the writer at once. At low load a
bid goes out alone and at once (no timer, no added wait); under load batches grow by themselves.
Every caller still gets its own reply, the one it would have got alone: bids on one item are applied
in arrival order, and a bid that arrived after another had completed lands in a later flush.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from prometheus_client import Histogram

if TYPE_CHECKING:
    from core_bidder.keys import ItemKeys
    from core_bidder.writers import BidInput, BidWriter, Group, Reply

BATCH_SIZE = Histogram(
    "bidder_commit_batch_bids", "Bids per group commit", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)

_Pending = tuple["ItemKeys", "BidInput", "asyncio.Future[Reply]"]


class GroupCommitter:
    def __init__(self, writer: BidWriter, max_batch: int = 512, max_in_flight: int = 2) -> None:
        self._writer = writer
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, keys: ItemKeys, bid: BidInput) -> asyncio.Future[Reply]:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, bid, future))
        if self._in_flight < self._max_in_flight:
            self._flush()
        return future

    def _flush(self) -> None:
        take = min(len(self._queue), self._max_batch)
        batch = [self._queue.popleft() for _ in range(take)]
        self._in_flight += 1
        task = asyncio.create_task(self._commit(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self, batch: list[_Pending]) -> None:
        by_item: dict[str, tuple[ItemKeys, list[BidInput], list[asyncio.Future[Reply]]]] = {}
        for keys, bid, future in batch:
            entry = by_item.get(keys.item_id)
            if entry is None:
                entry = by_item[keys.item_id] = (keys, [], [])
            entry[1].append(bid)
            entry[2].append(future)
        groups: list[Group] = [(keys, bids) for keys, bids, _ in by_item.values()]
        BATCH_SIZE.observe(len(batch))
        try:
            results = await self._writer.place_groups(groups)
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, _, futures), replies in zip(by_item.values(), results, strict=True):
                for future, reply in zip(futures, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._in_flight -= 1
            if self._queue and self._in_flight < self._max_in_flight:
                self._flush()

    async def drain(self) -> None:
        """Wait for every queued and in-flight bid (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
