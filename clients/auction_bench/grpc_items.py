"""Items for a benchmark, created over gRPC straight on the bidder (no token, no edge)."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2, bidder_pb2_grpc


async def create_items(
    stub: bidder_pb2_grpc.BidderServiceAsyncStub, count: int, *, min_increment: int = 1
) -> list[str]:
    """`count` open items (starting price 100), ending in a day: longer than any run."""
    request = bidder_pb2.CreateItemRequest(
        title="Bench lot", currency="USD", starting_price=100, min_increment=min_increment,
        ends_at=Timestamp(seconds=int(time.time()) + 86_400),
    )  # fmt: skip
    return [(await stub.CreateItem(request)).item.id for _ in range(count)]
