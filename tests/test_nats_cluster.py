"""The archive path on a real 3-node NATS cluster: an R3 stream loses a node in the middle of a bidding war.

Bidder, relay and archiver run as processes (`devstack`), on the session's Redis and a fresh database of
the session's PostgreSQL, with a cluster of their own (`devstack.nats_cluster`). Relay and archiver get
a comma-separated seed list naming a server that does not exist and one node, the victim, so both start
there (the dead seed is skipped) and know the other two only from the cluster itself. The stream's and
the archiver's consumer's Raft leaders are moved to the victim too; then the victim is SIGKILLed while
bids keep coming. Both clients must fail over, the stream and the consumer elect new leaders on the
surviving pair, and the archive must converge to exactly the accepted bids: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from redis.asyncio import Redis

from auction.v1 import bidder_pb2_grpc
from auction_common.nats_connection import nats_servers
from devstack.nats_cluster import NatsClusterServers
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.redis_server import RedisServer
from devstack.services import bidder_process
from devstack.services_archive import archiver_process, relay_process
from tests.archive_fixtures import (
    ARCHIVER_TEST_ENV,
    PARTITIONS,
    RELAY_TEST_ENV,
    Accepted,
    BidLoad,
    create_items,
    fresh_database,
)
from tests.conftest import scaled, server_sink, service_sink, temp_data_dir

__all__ = ["fresh_database"]

STREAM = "AUCTION"
DURABLE = "archiver"
VICTIM = 1

pytestmark = pytest.mark.timeout(scaled(120))


@dataclass
class NatsClusterStack:
    nats: NatsClusterServers
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    bidder_target: str
    dsn: str
    tmp: Any
    relay: ServiceProcess
    archiver: ServiceProcess

    async def create_items(self, count: int) -> list[str]:
        return await create_items(self.stub, count)

    async def archived(self, item_ids: list[str]) -> tuple[list[Accepted], set[str]]:
        conn = await asyncpg.connect(self.dsn)
        try:
            bids = await conn.fetch(
                "SELECT item_id, seq, bid_id, bidder, amount FROM bids WHERE item_id = ANY($1::text[])",
                item_ids,
            )
            items = await conn.fetch("SELECT item_id FROM items WHERE item_id = ANY($1::text[])", item_ids)
        finally:
            await conn.close()
        got = [Accepted(r["item_id"], r["seq"], r["bid_id"], r["bidder"], r["amount"]) for r in bids]
        return sorted(got, key=lambda a: (a.item_id, a.seq)), {r["item_id"] for r in items}

    async def clients_on(self, index: int) -> set[str]:
        """Names of the client connections node `index` holds (from its /connz)."""
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            response = await client.get(
                f"{self.nats.nodes[index].monitor_url}/connz", params={"limit": "1024"}
            )
        return {str(c.get("name") or "") for c in response.json().get("connections") or []}

    async def move_leader(self, api: str, want: str) -> str:
        """Ask a Raft group (stream or consumer) to hand its leadership to server `want`; its leader after."""
        leader = ""
        nc = await nats.connect(servers=self.nats.urls)
        try:
            for _ in range(10):
                leader = await self._leader_of(nc, api)
                if leader == want:
                    return leader
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    body = orjson.dumps({"placement": {"preferred": want}})
                    await nc.request(f"$JS.API.{api.replace('INFO', 'LEADER.STEPDOWN')}", body, timeout=5)
                await asyncio.sleep(0.5)
        finally:
            await nc.close()
        return leader

    async def wait_consumer(self) -> None:
        """Until the archiver's durable consumer exists (the archiver creates it once NATS answers)."""
        nc = await nats.connect(servers=self.nats.urls)
        try:
            async with asyncio.timeout(scaled(30)):
                while True:
                    with contextlib.suppress(nats.errors.Error, TimeoutError):
                        reply = await nc.request(f"$JS.API.CONSUMER.INFO.{STREAM}.{DURABLE}", b"", timeout=2)
                        if "error" not in orjson.loads(reply.data):
                            return
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()

    @staticmethod
    async def _leader_of(nc: NatsClient, api: str) -> str:
        reply = orjson.loads((await nc.request(f"$JS.API.{api}", b"", timeout=5)).data)
        return str((reply.get("cluster") or {}).get("leader") or "")


@pytest.fixture
async def nats_cluster_stack(
    redis_server: RedisServer, redis_client: Redis, fresh_database: str
) -> AsyncIterator[NatsClusterStack]:
    """A 3-node NATS cluster, a bidder on the (flushed) session Redis, relay (R3 stream) and archiver."""
    sink = service_sink()
    with temp_data_dir("auction-nats-cluster-") as tmp:
        async with NatsClusterServers(tmp / "nats", sink=server_sink(), start_timeout=scaled(30)) as cluster:
            bidder_port = free_port()
            nowhere = f"nats://127.0.0.1:{free_port()}"  # a seed with no server behind it
            victim = cluster.nodes[VICTIM].url
            bidder = bidder_process(
                redis_server.url, bidder_port, partitions=PARTITIONS, sink=sink, log_path=tmp / "bidder.log",
                extra_env={"BIDDER_LOG_LEVEL": "warning"},
            )  # fmt: skip
            relay = relay_process(
                redis_server.url, f"{nowhere},{victim}", free_port(), partitions=PARTITIONS,
                consumer="relay-1", sink=sink, log_path=tmp / "relay.log",
                extra_env={**RELAY_TEST_ENV, "RELAY_STREAM_REPLICAS": "3"},
            )  # fmt: skip
            archiver = archiver_process(
                f"{victim}, {nowhere}", fresh_database, free_port(), sink=sink, log_path=tmp / "archiver.log",
                extra_env=ARCHIVER_TEST_ENV,
            )  # fmt: skip
            processes = [bidder, relay, archiver]
            for process in processes:
                process.start_timeout = scaled(30)
                process.stop_grace = scaled(10)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{bidder_port}")
            try:
                for process in processes:
                    await process.start()
                yield NatsClusterStack(
                    cluster, bidder_pb2_grpc.BidderServiceStub(channel), f"127.0.0.1:{bidder_port}",
                    fresh_database, tmp, relay, archiver,
                )  # fmt: skip
            finally:
                for process in reversed(processes):
                    await process.stop()
                await channel.close(grace=None)


def test_nats_urls_may_name_several_servers() -> None:
    """RELAY_NATS_URL / ARCHIVER_NATS_URL: one URL or a comma-separated list (spaces allowed)."""
    assert nats_servers("nats://a:4222") == ["nats://a:4222"]
    assert nats_servers("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]
    with pytest.raises(ValueError, match="no NATS server"):
        nats_servers(" , ")


async def test_archive_converges_when_a_node_of_the_r3_stream_is_killed_mid_war(
    nats_cluster_stack: NatsClusterStack,
) -> None:
    """SIGKILL the node holding the relay, the archiver, the stream leader and the consumer leader in
    the middle of a bidding war: the archive ends with exactly the accepted bids, the stream with each
    event once, and the restarted node catches up."""
    stack = nats_cluster_stack
    cluster = stack.nats
    victim = cluster.nodes[VICTIM].server_name
    assert await stack.move_leader(f"STREAM.INFO.{STREAM}", victim) == victim
    await stack.wait_consumer()  # the archiver binds its durable consumer just after it is ready
    assert await stack.move_leader(f"CONSUMER.INFO.{STREAM}.{DURABLE}", victim) == victim
    assert {"relay-relay-1", f"archiver-{DURABLE}"} <= await stack.clients_on(VICTIM)

    items = await stack.create_items(4)
    load = BidLoad(stack.bidder_target, items, rate=30, out=stack.tmp / "load.json", contenders=3)
    await load.start()
    try:
        await asyncio.sleep(scaled(3))
        await cluster.kill(VICTIM)
        killed_at = time.time()
        await asyncio.sleep(scaled(6))
    finally:
        await load.stop()
    assert not load.errors, load.errors[:5]
    assert load.rejected > 0  # a war: some bids lost the race
    assert sum(1 for sent, _ms in load.samples if sent > killed_at) > 0, "bids went on after the kill"

    want = sorted(load.accepted, key=lambda a: (a.item_id, a.seq))
    got: list[Accepted] = []
    archived_items: set[str] = set()
    deadline = time.monotonic() + scaled(45)
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            got, archived_items = await stack.archived(items)
            if len(got) >= len(want) and archived_items == set(items):
                break
        await asyncio.sleep(0.2)
    assert len(got) == len(want), f"archived {len(got)} of {len(want)} accepted bids"
    assert got == want
    assert archived_items == set(items)
    assert stack.relay.running, "the relay rode out the failover"
    assert stack.archiver.running, "the archiver rode out the failover"
    survivors = [i for i in range(len(cluster.nodes)) if i != VICTIM]
    on_survivors: set[str] = set()
    for index in survivors:
        on_survivors |= await stack.clients_on(index)
    assert {"relay-relay-1", f"archiver-{DURABLE}"} <= on_survivors

    nc = await nats.connect(servers=[cluster.nodes[i].url for i in survivors])
    try:
        info = await nc.jetstream().stream_info(STREAM)
    finally:
        await nc.close()
    assert info.state.messages == len(want) + len(items), "each event once in the stream"
    assert info.cluster is not None
    assert info.cluster.leader != victim

    await cluster.restart(VICTIM)
    for _ in range(int(scaled(150))):
        if await _local_messages(cluster, VICTIM) == info.state.messages:
            break
        await asyncio.sleep(0.2)
    assert await _local_messages(cluster, VICTIM) == info.state.messages, "the restarted replica caught up"


async def _local_messages(cluster: NatsClusterServers, index: int) -> int:
    """Messages in node `index`'s own replica of the stream (its /jsz), -1 when it has none yet."""
    with contextlib.suppress(httpx.HTTPError):
        document = await cluster.jsz(index, streams="true")
        for account in document.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == STREAM:
                    return int((detail.get("state") or {}).get("messages") or 0)
    return -1
