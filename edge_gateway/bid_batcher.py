"""Group commit on the edge: concurrent bids share one `PlaceBids` call to the bidder.

A gRPC call from Python costs far more CPU than the bid itself, on both ends. So while `max_in_flight`
calls are out, arriving bids queue, and the next call carries the whole queue (up to `max_batch`).
At low load a bid goes out alone and at once (no timer, no added wait); under load batches grow by
themselves. Each caller gets exactly the outcome a single PlaceBid would have given it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import grpc

from auction.v1 import bidder_pb2

if TYPE_CHECKING:
    from auction.v1 import bidder_pb2_grpc

_Pending = tuple[bidder_pb2.PlaceBidRequest, "asyncio.Future[bidder_pb2.BidOutcome]"]


class BidBatcher:
    def __init__(
        self,
        stub: bidder_pb2_grpc.BidderServiceAsyncStub,
        timeout: float,
        max_batch: int = 256,
        max_in_flight: int = 2,
    ) -> None:
        self._stub = stub
        self._timeout = timeout
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[_Pending] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: bidder_pb2.PlaceBidRequest) -> asyncio.Future[bidder_pb2.BidOutcome]:
        """The bid's outcome; fails with the call's `grpc.aio.AioRpcError` when the whole call fails."""
        future: asyncio.Future[bidder_pb2.BidOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._in_flight < self._max_in_flight:
            self._send_next()
        return future

    def _send_next(self) -> None:
        take = min(len(self._queue), self._max_batch)
        batch = [self._queue.popleft() for _ in range(take)]
        self._in_flight += 1
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            response = await self._stub.PlaceBids(
                bidder_pb2.PlaceBidsRequest(bids=[request for request, _ in batch]), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), outcome in zip(batch, response.outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
        finally:
            self._in_flight -= 1
            if self._queue and self._in_flight < self._max_in_flight:
                self._send_next()

    async def drain(self) -> None:
        """Wait for every queued and in-flight bid (graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
