"""The bidder's health follows Redis, and a Redis outage is UNAVAILABLE, never a hang or a crash."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings
from devstack.servers import RedisServer
from tests.conftest import scaled, temp_data_dir


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A Redis of this test's own: it gets paused and killed."""
    with temp_data_dir("bidder-health-") as data:
        server = RedisServer(data)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


async def wait_for_status(stub: health_pb2_grpc.HealthStub, wanted: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        if answer.status == wanted:
            return
        assert time.monotonic() < deadline, f"health stayed {answer.status}, wanted {wanted}"
        await asyncio.sleep(0.05)


async def test_health_follows_redis_and_outage_is_unavailable(own_redis: RedisServer) -> None:
    """Frozen Redis: NOT_SERVING; killed Redis: PlaceBid is UNAVAILABLE; back: SERVING and bids work."""
    settings = BidderSettings(
        redis_url=own_redis.url, port=0, health_interval_seconds=0.2, shutdown_grace_seconds=0
    )
    server = BidderServer(settings)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(channel)
    bidder = bidder_pb2_grpc.BidderServiceStub(channel)
    try:
        await wait_for_status(health, health_pb2.HealthCheckResponse.SERVING, scaled(5))
        ends = Timestamp(seconds=int(time.time()) + 3600)
        item = (await bidder.CreateItem(bidder_pb2.CreateItemRequest(
            title="Rug", currency="USD", starting_price=10, min_increment=1, ends_at=ends))).item  # fmt: skip

        own_redis.pause()
        await wait_for_status(health, health_pb2.HealthCheckResponse.NOT_SERVING, scaled(5))
        own_redis.resume()
        await wait_for_status(health, health_pb2.HealthCheckResponse.SERVING, scaled(5))

        own_redis.kill()
        await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await bidder.PlaceBid(
                bidder_pb2.PlaceBidRequest(item_id=item.id, bidder="ann", amount=10), timeout=10
            )
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE

        await own_redis.restart()  # same port, same append-only file
        await wait_for_status(health, health_pb2.HealthCheckResponse.SERVING, scaled(5))
        placed = await bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item.id, bidder="ann", amount=10))
        assert placed.seq == 2
    finally:
        await channel.close(grace=None)
        await server.stop()
