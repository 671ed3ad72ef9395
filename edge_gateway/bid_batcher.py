"""Group commit on the edge: concurrent bids share one `PlaceBids` call to the bidder.

A gRPC call from Python costs far more CPU than the bid itself, on both ends, so while calls are out,
arriving bids queue and the next call carries them all (`auction_common.group_commit` does the
queueing; no timer, so a lone bid goes out at once). Each caller gets exactly the outcome a single
PlaceBid would have given it; a failed call fails its bids with the call's `grpc.aio.AioRpcError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auction.v1 import bidder_pb2
from auction_common.group_commit import GroupCommit

if TYPE_CHECKING:
    import asyncio

    from auction.v1 import bidder_pb2_grpc


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
        self._group: GroupCommit[bidder_pb2.PlaceBidRequest, bidder_pb2.BidOutcome] = GroupCommit(
            self._send, max_batch=max_batch, max_in_flight=max_in_flight
        )

    def submit(self, request: bidder_pb2.PlaceBidRequest) -> asyncio.Future[bidder_pb2.BidOutcome]:
        return self._group.submit(request)

    async def _send(self, batch: list[bidder_pb2.PlaceBidRequest]) -> list[bidder_pb2.BidOutcome]:
        response = await self._stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=batch), timeout=self._timeout)
        return list(response.outcomes)

    async def drain(self) -> None:
        await self._group.drain()
