"""Group commit without a timer: concurrent requests share one downstream call.

While `max_in_flight` commits are out, submitted items queue; the next commit takes the whole queue
(up to `max_batch`). At low load an item goes out alone and at once (no added wait); under load batches
grow by themselves. `commit` gets the items in submission order and returns one result per item in the
same order; an exception in an item's place fails that item alone, and if `commit` raises, every item
of that batch fails with the same exception. Used by the edge
(bids -> one PlaceBids call) and by the bidder (bids -> one Lua call per item).

With `key`, items of one key are committed strictly in submission order: a batch never takes an item
whose key is in a commit still in flight, so two commits for one key never race (other keys still
overlap). The bidder keys by item, so bids on one item are applied in the order they arrived.

With `weight`, `max_batch` bounds the sum of the items' weights instead of their number (an item
heavier than `max_batch` goes alone): the bidder submits one item per call and auction item, weighing
as many bids as it carries, so one future stands for many bids while a batch stays bounded in bids.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        commit: Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        max_batch: int,
        max_in_flight: int,
        key: Callable[[Item], Hashable] | None = None,
        weight: Callable[[Item], int] | None = None,
    ) -> None:
        self._commit = commit
        self._key = key
        self._weight = weight
        self._busy_keys: set[Hashable] = set()
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, item: Item) -> asyncio.Future[Result]:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._in_flight < self._max_in_flight:
            self._start()
        return future

    def _start(self) -> None:
        if self._key is None:
            batch = self._take_first()
            keys: set[Hashable] = set()
        else:
            batch, keys = self._take_free_keys()
            if not batch:
                return  # every queued key is in flight; the commit that frees one starts the next
        self._in_flight += 1
        task = asyncio.create_task(self._run(batch, keys))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_first(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The queue's head, up to `max_batch` (in weight, with `weight`)."""
        if self._weight is None:
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        total = 0
        while self._queue:
            weight = self._weight(self._queue[0][0])
            if batch and total + weight > self._max_batch:
                break
            batch.append(self._queue.popleft())
            total += weight
        return batch

    def _take_free_keys(self) -> tuple[list[tuple[Item, asyncio.Future[Result]]], set[Hashable]]:
        """Queued items whose key has no commit in flight, in order, up to `max_batch`."""
        assert self._key is not None
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        kept: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        blocked = set(self._busy_keys)
        keys: set[Hashable] = set()
        total = 0
        for entry in self._queue:
            key = self._key(entry[0])
            weight = 1 if self._weight is None else self._weight(entry[0])
            if key in blocked or (batch and total + weight > self._max_batch):
                kept.append(entry)
                blocked.add(key)  # later items of this key must not overtake this one
            else:
                batch.append(entry)
                keys.add(key)
                total += weight
        self._queue = kept
        self._busy_keys |= keys
        return batch, keys

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]], keys: set[Hashable]) -> None:
        try:
            results = await self._commit([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._busy_keys -= keys
            if self._queue and self._in_flight < self._max_in_flight:
                self._start()

    async def drain(self) -> None:
        """Wait until every queued and in-flight item is committed (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
