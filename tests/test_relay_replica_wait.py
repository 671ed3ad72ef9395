"""`RELAY_REDIS_WAIT_REPLICAS`: JetStream only ever gets outbox entries a real replica holds.

A primary and a replica of this module's own, NATS, a bidder in this process that does not wait (so its
bids land on the primary alone while the replica is away, as an UNAVAILABLE-answered step does) and a
relay process waiting for one replica. With the replica paused (SIGSTOP) or stopped, a bid's outbox
entry is not published; once the replica is back it is, once. Without the option the relay publishes
it at once, which is the ghost event a failover would leave in the archive (`relay.replica_wait`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import NotFoundError
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_contract.redis_layout import EVENT_FIELD, item_keys
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import NatsServer, RedisReplica, RedisServer
from devstack.services_archive import relay_process
from relay.settings import RelaySettings
from tests.archive_fixtures import RELAY_TEST_ENV
from tests.conftest import running_server, scaled, service_sink, temp_data_dir

WAIT_MS = min(4000, int(scaled(0.3) * 1000))
PARTITIONS = 16
# Long enough for several WAITs and retries of the relay: what it would have published by now, it has.
HELD_FOR = scaled(1.5)


@dataclass
class Stack:
    primary: RedisServer
    replica: RedisReplica
    nats_url: str
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    relay: ServiceProcess

    async def restart_replica(self) -> None:
        await self.replica.restart()
        await self.replica.wait_synced(scaled(30))


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with (
        running_server(RedisServer, "auction-relay-wait-primary-") as primary,
        running_server(RedisReplica, "auction-relay-wait-replica-", primary=primary) as replica,
        running_server(NatsServer, "auction-relay-wait-nats-") as nats_server,
    ):
        settings = BidderSettings(
            redis_url=primary.url, port=0, partitions=PARTITIONS, health_interval_seconds=0.2,
            shutdown_grace_seconds=0, closer=False,
        )  # fmt: skip
        bidder = BidderServer(settings)
        port = await bidder.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        with temp_data_dir("auction-relay-wait-") as tmp:
            env = {
                **RELAY_TEST_ENV,
                "RELAY_REDIS_WAIT_REPLICAS": "1",
                "RELAY_REDIS_WAIT_TIMEOUT_MS": str(WAIT_MS),
            }
            relay = relay_process(
                primary.url, nats_server.url, free_port(), partitions=PARTITIONS, consumer="relay-wait",
                sink=service_sink(), log_path=tmp / "relay.log", extra_env=env,
            )  # fmt: skip
            relay.start_timeout = scaled(30)
            await relay.start()
            try:
                yield Stack(
                    primary, replica, nats_server.url, bidder_pb2_grpc.BidderServiceStub(channel), relay
                )
            finally:
                await relay.stop()
                await channel.close(grace=None)
                await bidder.stop()


async def _create(stack: Stack) -> str:
    request = bidder_pb2.CreateItemRequest(
        title="Clock", currency="USD", starting_price=100, min_increment=10,
        ends_at=Timestamp(seconds=int(time.time()) + 3600),
    )  # fmt: skip
    return str((await stack.stub.CreateItem(request)).item.id)


async def _bid(stack: Stack, item_id: str, amount: int) -> int:
    request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="ann", amount=amount, idempotency_key="")
    return int((await stack.stub.PlaceBid(request)).seq)


async def _published(stack: Stack, item_id: str) -> tuple[str | None, int]:
    """The event id of the item's last message in JetStream (None: none yet), and how many it has."""
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        subject = f"auction.events.{item_id}"
        info = await js.stream_info("AUCTION", subjects_filter=subject)
        count = (info.state.subjects or {}).get(subject, 0)
        try:
            last = await js.get_last_msg("AUCTION", subject)
        except NotFoundError:
            return None, count
        return (last.headers or {}).get("Nats-Msg-Id"), count
    finally:
        await nc.close()


async def _until_published(stack: Stack, event_id: str, within: float) -> int:
    deadline = time.monotonic() + scaled(within)
    while True:
        last, count = await _published(stack, event_id.rsplit(".", 1)[0])
        if last == event_id:
            return count
        assert time.monotonic() < deadline, f"{event_id} not published (last: {last})"
        await asyncio.sleep(0.05)


async def _behind_waits(stack: Stack) -> float:
    assert stack.relay.endpoint is not None
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        text = (await client.get(f"{stack.relay.endpoint}/metrics")).text
    prefix = 'relay_redis_waits_total{outcome="behind"} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def _outbox_holds(stack: Stack, item_id: str) -> int:
    """How many of the item's entries its partition's outbox holds on the primary."""
    async with Redis.from_url(stack.primary.url) as redis:
        rows: Any = await redis.xrange(item_keys(item_id, PARTITIONS).outbox)
    return sum(1 for _, fields in rows if item_id.encode() in fields[EVENT_FIELD.encode()])


async def _until_removed(stack: Stack, item_id: str) -> None:
    deadline = time.monotonic() + scaled(10)
    while await _outbox_holds(stack, item_id):
        assert time.monotonic() < deadline, "published but never removed from the outbox"
        await asyncio.sleep(0.05)


async def test_with_the_replica_paused_a_bid_is_not_published_until_it_resumes(stack: Stack) -> None:
    """SIGSTOPped replica: the bid (on the primary alone) stays in the outbox, unpublished, while the
    relay's WAITs fall short; resumed, the replica gets it and only then does JetStream, once."""
    item_id = await _create(stack)
    await _until_published(stack, f"{item_id}.1", within=10)
    behind = await _behind_waits(stack)
    stack.replica.pause()
    try:
        seq = await _bid(stack, item_id, 100)
        await asyncio.sleep(HELD_FOR)
        assert await _published(stack, item_id) == (f"{item_id}.1", 1), "published before the replica had it"
        assert await _outbox_holds(stack, item_id) == 1
        assert await _behind_waits(stack) > behind
    finally:
        stack.replica.resume()
    assert await _until_published(stack, f"{item_id}.{seq}", within=10) == 2
    await _until_removed(stack, item_id)


async def test_with_the_replica_stopped_a_bid_is_published_once_it_is_back(stack: Stack) -> None:
    """Stopped replica: the bid is not published (the outbox keeps it); restarted and resynchronised,
    the replica holds it and the relay publishes it, once."""
    item_id = await _create(stack)
    await _until_published(stack, f"{item_id}.1", within=10)
    await stack.replica.stop()
    try:
        seq = await _bid(stack, item_id, 100)
        await asyncio.sleep(HELD_FOR)
        assert await _published(stack, item_id) == (f"{item_id}.1", 1), "published without a replica"
        assert await _outbox_holds(stack, item_id) == 1
    finally:
        await stack.restart_replica()
    assert await _until_published(stack, f"{item_id}.{seq}", within=15) == 2


def test_the_relay_refuses_wait_on_a_cluster_and_is_off_by_default() -> None:
    """Cluster mode refuses the option at startup, saying why; 0 (the default) is off."""
    with pytest.raises(
        ValueError, match="RELAY_REDIS_WAIT_REPLICAS is not supported with RELAY_REDIS_CLUSTER"
    ):
        RelaySettings(redis_cluster=True, redis_wait_replicas=1)
    assert RelaySettings().redis_wait_replicas == 0
    with pytest.raises(ValueError, match="less than or equal to 4000"):
        RelaySettings(redis_wait_timeout_ms=5000)
