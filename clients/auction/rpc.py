"""gRPC for internal callers: the generated `auction.v1` stubs on one channel."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from auction.v1 import bidder_pb2_grpc, history_pb2_grpc


@dataclass(frozen=True)
class Stubs:
    channel: grpc.aio.Channel
    bidder: bidder_pb2_grpc.BidderServiceAsyncStub
    history: history_pb2_grpc.HistoryServiceAsyncStub

    async def close(self) -> None:
        await self.channel.close(grace=None)


def connect(target: str) -> Stubs:
    """Both services' async stubs over one insecure channel to `target` ("host:port")."""
    channel = grpc.aio.insecure_channel(target)
    return Stubs(
        channel, bidder_pb2_grpc.BidderServiceStub(channel), history_pb2_grpc.HistoryServiceStub(channel)
    )
