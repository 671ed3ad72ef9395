"""The closer across processes: two bidders closing the same 500 items, and a bidder killed while items
are due. Each item gets exactly one `closed` event, as its last event, either way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_contract.redis_layout import item_keys
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import RedisServer
from devstack.services import bidder_process
from tests.conftest import scaled, service_sink

PARTITIONS = 16


def _bidder(redis: RedisServer, port: int, name: str) -> ServiceProcess:
    process = bidder_process(
        redis.url, port, partitions=PARTITIONS, sink=service_sink(), name=name,
        extra_env={"BIDDER_LOG_LEVEL": "warning", "BIDDER_CLOSE_INTERVAL_SECONDS": "0.1"},
    )  # fmt: skip
    process.start_timeout = scaled(30)
    return process


async def _create(stub: bidder_pb2_grpc.BidderServiceAsyncStub, count: int, ends_ms: int) -> list[str]:
    request = bidder_pb2.CreateItemRequest(
        title="Lot", currency="EUR", starting_price=100, min_increment=5,
        ends_at=Timestamp(seconds=ends_ms // 1000, nanos=(ends_ms % 1000) * 1_000_000),
    )  # fmt: skip
    replies = await asyncio.gather(*(stub.CreateItem(request) for _ in range(count)))
    return [r.item.id for r in replies]


async def _closed_events(redis: Redis, item_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per item, its `closed` events; and every item's last event must be one of them."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in item_ids:
            pipe.xrange(item_keys(item_id, PARTITIONS).events)
        histories = await pipe.execute()
    for item_id, entries in zip(item_ids, histories, strict=True):
        events = [orjson.loads(fields[b"e"]) for _, fields in entries]
        found[item_id] = [e for e in events if e["type"] == "closed"]
        if found[item_id]:
            assert events[-1]["type"] == "closed", item_id
    return found


async def _wait_all_closed(
    redis: Redis, item_ids: list[str], within: float
) -> dict[str, list[dict[str, Any]]]:
    deadline = time.monotonic() + scaled(within)
    while True:
        closed = await _closed_events(redis, item_ids)
        if all(closed.values()) or time.monotonic() > deadline:
            return closed
        await asyncio.sleep(0.2)


async def test_two_bidders_close_500_items_ending_in_the_same_second_once_each(
    redis_server: RedisServer,
) -> None:
    ports = [free_port(), free_port()]
    processes = [_bidder(redis_server, port, f"closer-{i}") for i, port in enumerate(ports)]
    redis = Redis.from_url(redis_server.url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports[0]}")
    try:
        for process in processes:
            await process.start()
        ends_ms = (int(time.time()) + 3) * 1000
        item_ids = await _create(bidder_pb2_grpc.BidderServiceStub(channel), 500, ends_ms)
        closed = await _wait_all_closed(redis, item_ids, within=30)
        counts = {item_id: len(events) for item_id, events in closed.items()}
        assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
        # Gone from the ends sets (the session's Redis holds other tests' open items too).
        async with redis.pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                keys = item_keys(item_id, PARTITIONS)
                pipe.zscore(keys.ends, item_id)
            assert await pipe.execute() == [None] * len(item_ids)
        delays = sorted(_closed_ms(events[0]) - ends_ms for events in closed.values())
        assert delays[0] >= 0
    finally:
        await channel.close(grace=None)
        await redis.aclose()
        for process in processes:
            await process.stop()


async def test_a_bidder_killed_while_items_are_due_closes_each_once_after_its_restart(
    redis_server: RedisServer,
) -> None:
    port = free_port()
    bidder = _bidder(redis_server, port, "doomed-bidder")
    redis = Redis.from_url(redis_server.url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await bidder.start()
        stub = bidder_pb2_grpc.BidderServiceStub(channel)
        ends_ms = int(time.time() * 1000) + 1500
        item_ids = await _create(stub, 200, ends_ms)
        # Killed around the end: some items closed, some due and not yet, maybe one mid-pipeline.
        await asyncio.sleep(max(0.0, (ends_ms - time.time() * 1000) / 1000) + 0.05)
        bidder.kill()
        await bidder.wait()
        before = await _closed_events(redis, item_ids)
        restarted = _bidder(redis_server, port, "restarted-bidder")
        await restarted.start()
        try:
            closed = await _wait_all_closed(redis, item_ids, within=30)
        finally:
            await restarted.stop()
        assert {len(events) for events in closed.values()} == {1}
        for item_id, events in before.items():
            if events:  # closed before the kill: the very same event, not a second one
                assert closed[item_id] == events
    finally:
        await channel.close(grace=None)
        await redis.aclose()
        await bidder.stop()


def _closed_ms(event: dict[str, Any]) -> int:
    from auction_contract.wire_time import parse_ms

    return parse_ms(str(event["closed_at"]).replace("Z", "+00:00"))
