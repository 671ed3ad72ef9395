"""Group commit without a timer: concurrent requests share one downstream call.

While `max_in_flight` commits are out, submitted items queue; the next commit takes the whole queue
(up to `max_batch`). At low load an item goes out alone and at once (no added wait); under load batches
grow by themselves. `commit` gets the items in submission order and returns one result per item in the
same order; if it raises, every item of that batch fails with the same exception. Used by the edge
(bids -> one PlaceBids call) and by the bidder (bids -> one Lua call per item).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        commit: Callable[[list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int,
        max_in_flight: int,
    ) -> None:
        self._commit = commit
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
        take = min(len(self._queue), self._max_batch)
        batch = [self._queue.popleft() for _ in range(take)]
        self._in_flight += 1
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._commit([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            if self._queue and self._in_flight < self._max_in_flight:
                self._start()

    async def drain(self) -> None:
        """Wait until every queued and in-flight item is committed (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
