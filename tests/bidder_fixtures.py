"""An in-process bidder per write strategy, on a free port, against the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from redis.asyncio import Redis

from auction.v1 import bidder_pb2_grpc
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings


@dataclass
class BidderHandle:
    strategy: str
    server: BidderServer
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    redis: Redis
    target: str


@pytest.fixture(scope="module", params=["lua", "watch"])
async def bidder(request: pytest.FixtureRequest, redis_server: object) -> AsyncIterator[BidderHandle]:
    url = getattr(redis_server, "url")  # noqa: B009 - the fixture's type lives in conftest
    settings = BidderSettings(
        redis_url=url, port=0, strategy=request.param, health_interval_seconds=0.2, shutdown_grace_seconds=0
    )
    server = BidderServer(settings)
    port = await server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(target)
    redis = Redis.from_url(url, decode_responses=True)
    try:
        yield BidderHandle(request.param, server, bidder_pb2_grpc.BidderServiceStub(channel), redis, target)
    finally:
        await channel.close(grace=None)
        await redis.aclose()
        await server.stop()
