"""The live path on a real 3-master Redis Cluster: bidder, fan-out and relay in cluster mode, as processes.

One cluster per module (`devstack.redis_cluster`), the services started with their cluster settings
(`BIDDER_REDIS_CLUSTER`, `FANOUT_REDIS_CLUSTER`, `RELAY_REDIS_CLUSTER`) and nothing else changed. The
checks: items land on every master (as the cluster itself says), a concurrent bidding war on items of
all three masters keeps each item's seqs unique and gap-free with the exact final state, history and
outbox, every viewer gets every event once in order, the relay drains the outboxes of all masters, a
script cache flushed on every node is reloaded per node, and the rebuild's atomic write runs on the node
owning the item, and per-bidder notices of items on every master reach a `/ws/me` subscribed on one node.
No caller ever sees a CROSSSLOT or MOVED error.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import nats
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from websockets.typing import Subprotocol

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_contract.redis_layout import item_keys
from core_bidder.restore import restore_item
from core_bidder.restore_state import ArchivedBid, ArchivedItem
from core_bidder.settings import BidderSettings
from devstack.nats_server import NatsServer
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.redis_cluster import RedisClusterServers
from devstack.services import bidder_process
from devstack.services_archive import relay_process
from devstack.tokens import mint_token
from fanout.metrics import FanoutMetrics
from fanout.pubsub import ClusterSubscriber
from tests.archive_fixtures import RELAY_TEST_ENV
from tests.conftest import scaled, server_sink, service_sink, temp_data_dir
from tests.fanout_fixtures import FanoutStack, RawViewer
from tests.notice_fixtures import NoticeViewer
from tests.test_fanout_pubsub import Heard

PARTITIONS = 16
INCREMENT = 10
BIDDERS_PER_ITEM = 10
BIDS_PER_BIDDER = 20
ITEMS_PER_MASTER = 2

pytestmark = pytest.mark.timeout(scaled(120))


@dataclass
class ClusterStack:
    cluster: RedisClusterServers
    redis: RedisCluster
    live: FanoutStack
    nats_url: str
    stream: str
    subject_prefix: str

    @property
    def stub(self) -> bidder_pb2_grpc.BidderServiceAsyncStub:
        return self.live.stub

    async def items_on_every_master(self, per_master: int) -> dict[int, list[str]]:
        """Create items until each master owns `per_master` of them (bounded); owner index -> ids."""
        owned: dict[int, list[str]] = {i: [] for i in range(len(self.cluster.nodes))}
        for _ in range(40 * per_master):
            item_id = await self.live.create_item(starting_price=100, min_increment=INCREMENT)
            owner = await self.cluster.owner_of(item_keys(item_id, PARTITIONS).item)
            if len(owned[owner]) < per_master:
                owned[owner].append(item_id)
            if all(len(ids) == per_master for ids in owned.values()):
                return owned
        raise AssertionError(f"items did not reach every master: {owned}")


@pytest.fixture(scope="module")
async def cluster_stack(nats_server: NatsServer) -> AsyncIterator[ClusterStack]:
    """A 3-master cluster; a bidder, a fan-out and a relay (to the session's NATS) in cluster mode."""
    sink = service_sink()
    tag = secrets.token_hex(3)
    stream, prefix = f"CLUSTER_{tag.upper()}", f"cluster{tag}.events"
    with temp_data_dir("auction-redis-cluster-") as tmp:
        async with RedisClusterServers(
            tmp / "cluster", sink=server_sink(), start_timeout=scaled(30)
        ) as cluster:
            bidder_port = free_port()
            bidder = bidder_process(
                cluster.url, bidder_port, partitions=PARTITIONS, sink=sink, log_path=tmp / "bidder.log",
                extra_env={"BIDDER_REDIS_CLUSTER": "true", "BIDDER_LOG_LEVEL": "warning"},
            )  # fmt: skip
            relay = relay_process(
                cluster.url, nats_server.url, free_port(), partitions=PARTITIONS, consumer="relay-cluster",
                sink=sink, log_path=tmp / "relay.log",
                extra_env={**RELAY_TEST_ENV, "RELAY_REDIS_CLUSTER": "true", "RELAY_STREAM": stream,
                           "RELAY_SUBJECT_PREFIX": prefix},
            )  # fmt: skip
            processes: list[ServiceProcess] = [bidder, relay]
            for process in processes:
                process.start_timeout = scaled(30)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{bidder_port}")
            redis = RedisCluster.from_url(cluster.url, decode_responses=True)
            live = FanoutStack(
                cluster.url, f"127.0.0.1:{bidder_port}", bidder_pb2_grpc.BidderServiceStub(channel),
                free_port(), tmp, sink,
            )  # fmt: skip
            try:
                await bidder.start()
                await relay.start()
                await live.start_fanout(env={"FANOUT_REDIS_CLUSTER": "true"})
                yield ClusterStack(cluster, redis, live, nats_server.url, stream, prefix)
            finally:
                for process in reversed(live.processes):
                    await process.stop()
                for process in reversed(processes):
                    await process.stop()
                await channel.close(grace=None)
                await redis.aclose()


async def test_cluster_mode_implies_sharded_pubsub_and_refuses_watch() -> None:
    """BIDDER_REDIS_CLUSTER publishes with SPUBLISH; with strategy=watch the bidder refuses to start,
    saying why, before it touches Redis."""
    assert BidderSettings(redis_cluster=True).publish_command == "SPUBLISH"
    assert BidderSettings().publish_command == "PUBLISH"
    with pytest.raises(ValidationError, match="BIDDER_STRATEGY=watch is not supported"):
        BidderSettings(redis_cluster=True, strategy="watch")
    env = {**os.environ, "BIDDER_REDIS_CLUSTER": "true", "BIDDER_STRATEGY": "watch"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "core_bidder", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=scaled(30))
    assert proc.returncode == 2
    assert "BIDDER_STRATEGY=watch is not supported with BIDDER_REDIS_CLUSTER=true" in err.decode()


async def test_items_spread_over_all_three_masters(cluster_stack: ClusterStack) -> None:
    """Each master holds the keys of the items whose hash tag it owns (asked of each node directly),
    and ListItems, which reads every partition's index in one pipeline, finds items of all masters."""
    stack = cluster_stack
    owned = await stack.items_on_every_master(3)
    for index, node in enumerate(stack.cluster.nodes):
        direct = Redis.from_url(node.url, decode_responses=True)
        try:
            local = {key async for key in direct.scan_iter(match="auction:*:item:*", count=1000)}
        finally:
            await direct.aclose()
        for owner, ids in owned.items():
            for item_id in ids:
                assert (item_keys(item_id, PARTITIONS).item in local) == (owner == index)
    wanted = {item_id for ids in owned.values() for item_id in ids}
    seen: set[str] = set()
    cursor = ""
    for _ in range(100):
        page = await stack.stub.ListItems(bidder_pb2.ListItemsRequest(limit=7, cursor=cursor))
        seen.update(item.id for item in page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert wanted <= seen


@dataclass(frozen=True)
class Won:
    item_id: str
    bidder: str
    amount: int
    seq: int
    bid_id: str
    placed_ms: int
    started: float
    finished: float


async def fight(stub: bidder_pb2_grpc.BidderServiceAsyncStub, item_id: str, name: str) -> list[Won | str]:
    """One bidder on one item: bid at the minimum plus a random step, read the new minimum, repeat.

    Returns what it won, and any error other than a lost race (a test failure: CROSSSLOT, MOVED, ...).
    """
    rng = random.Random(f"{item_id}-{name}")
    next_min = 100
    results: list[Won | str] = []
    for _ in range(BIDS_PER_BIDDER):
        amount = next_min + rng.randrange(0, 3) * INCREMENT
        started = time.perf_counter()
        try:
            reply = await stub.PlaceBid(
                bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=name, amount=amount), timeout=scaled(30)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                results.append(f"{exc.code().name}: {exc.details()}")
                continue
            got = await stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id), timeout=scaled(30))
            next_min = got.item.min_next_bid
            continue
        placed_ms = reply.placed_at.seconds * 1000 + reply.placed_at.nanos // 1_000_000
        won = Won(item_id, name, amount, reply.seq, reply.bid_id, placed_ms, started, time.perf_counter())
        results.append(won)
        next_min = reply.item.min_next_bid
    return results


async def test_bidding_war_on_every_master_with_viewers_and_relay(cluster_stack: ClusterStack) -> None:
    """Bidders fight over two items per master at once (group commits span masters): per item, unique
    gap-free seqs in real-time order, rising prices, exact final state, history and outbox events; each
    viewer gets every seq once in order; the relay empties every outbox into JetStream, once per event."""
    stack = cluster_stack
    owned = await stack.items_on_every_master(ITEMS_PER_MASTER)
    items = [item_id for ids in owned.values() for item_id in ids]
    viewers = {item_id: await RawViewer.open(stack.live.url(item_id)) for item_id in items}
    await asyncio.gather(*(v.wait_for(lambda v: bool(v.messages)) for v in viewers.values()))

    fights = [fight(stack.stub, item_id, f"b{i}") for item_id in items for i in range(BIDDERS_PER_ITEM)]
    outcomes = [result for results in await asyncio.gather(*fights) for result in results]
    errors = [o for o in outcomes if isinstance(o, str)]
    assert not errors, errors[:5]
    won = [o for o in outcomes if isinstance(o, Won)]

    for item_id in items:
        mine = sorted((w for w in won if w.item_id == item_id), key=lambda w: w.seq)
        assert len(mine) >= BIDDERS_PER_ITEM, "a war: many bids accepted"
        assert [w.seq for w in mine] == list(range(2, 2 + len(mine))), "unique, gap-free seqs"
        assert all(b.amount >= a.amount + INCREMENT for a, b in itertools.pairwise(mine))
        latest_start = float("-inf")
        for w in mine:
            assert w.finished >= latest_start, "a later seq finished before an earlier seq started"
            latest_start = max(latest_start, w.started)
        final = (await stack.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))).item
        assert (final.seq, final.current_price, final.highest_bidder, final.bid_count) == (
            mine[-1].seq, mine[-1].amount, mine[-1].bidder, len(mine),
        )  # fmt: skip
        keys = item_keys(item_id, PARTITIONS)
        history: Any = await stack.redis.xrange(keys.events)
        events = [orjson.loads(fields["e"]) for _, fields in history]
        assert [entry_id for entry_id, _ in history] == [f"{s}-0" for s in range(1, mine[-1].seq + 1)]
        assert [(e["seq"], e["bidder"], e["amount"]) for e in events[1:]] == [
            (w.seq, w.bidder, w.amount) for w in mine
        ]
        await viewers[item_id].wait_seq(mine[-1].seq, within=30)
        assert viewers[item_id].event_seqs == list(range(2, mine[-1].seq + 1)), "every seq once, in order"
    await asyncio.gather(*(v.close() for v in viewers.values()))

    # The relay read every partition's outbox on its master: each event reached JetStream once, and
    # every outbox is empty again.
    wanted = {
        f"{stack.subject_prefix}.{item_id}": 1 + sum(w.item_id == item_id for w in won) for item_id in items
    }
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        subjects: dict[str, int] = {}
        async with asyncio.timeout(scaled(30)):
            while {s: subjects.get(s, 0) for s in wanted} != wanted:
                info = await js.stream_info(stack.stream, subjects_filter=f"{stack.subject_prefix}.>")
                subjects = dict(info.state.subjects or {})
                await asyncio.sleep(0.2)
    finally:
        await nc.close()
    outboxes = {item_keys(i, PARTITIONS).outbox for i in items}
    for _ in range(int(scaled(100))):
        if not sum([await stack.redis.xlen(key) for key in outboxes]):
            break
        await asyncio.sleep(0.1)
    assert not sum([await stack.redis.xlen(key) for key in outboxes]), "every outbox drained"
    # Every command went straight to its node: none made redis-py ask a server for its keys first.
    for node in stack.cluster.nodes:
        direct = Redis.from_url(node.url)
        try:
            stats = await direct.info("commandstats")
        finally:
            await direct.aclose()
        assert "cmdstat_command|getkeys" not in stats, (node.port, stats.get("cmdstat_command|getkeys"))


async def test_scripts_flushed_on_every_master_are_reloaded_per_node(cluster_stack: ClusterStack) -> None:
    """After SCRIPT FLUSH on all masters (a restart loses the cache too), one PlaceBids call with a bid on
    two items of each master is accepted in full: the first commits go out alone and reload the script
    on their node, the rest go out as one pipeline over all nodes, and the node still without the
    script answers NOSCRIPT for its calls alone, which are run again after a reload."""
    stack = cluster_stack
    owned = await stack.items_on_every_master(2)
    items = [owned[0][0], owned[1][0], owned[2][0], owned[0][1], owned[1][1], owned[2][1]]
    for round_ in range(2):
        await stack.redis.script_flush()  # SCRIPT FLUSH goes to every primary
        amount = 100 + INCREMENT * round_
        bids = [bidder_pb2.PlaceBidRequest(item_id=i, bidder="flush", amount=amount) for i in items]
        reply = await stack.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
        assert [o.WhichOneof("outcome") for o in reply.outcomes] == ["accepted"] * len(items), reply
        assert [o.accepted.seq for o in reply.outcomes] == [2 + round_] * len(items)


async def test_rebuild_transaction_runs_on_the_owning_master(cluster_stack: ClusterStack) -> None:
    """The rebuild's write on a cluster client restores a lost item's hash, index entry and history
    exactly, on the master owning it; a second run leaves it alone; bidding continues."""
    stack = cluster_stack
    owned = await stack.items_on_every_master(1)
    item_id = owned[2][0]
    keys = item_keys(item_id, PARTITIONS)
    bids: list[ArchivedBid] = []
    for i in range(5):
        reply = await stack.stub.PlaceBid(
            bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=f"r{i}", amount=100 + INCREMENT * i)
        )
        placed_ms = reply.placed_at.seconds * 1000 + reply.placed_at.nanos // 1_000_000
        bids.append(ArchivedBid(reply.seq, f"r{i}", reply.amount, placed_ms, reply.amount + INCREMENT))
    before_hash: dict[str, str] = await stack.redis.hgetall(keys.item)  # type: ignore[assignment]
    before_events = await stack.redis.xrange(keys.events)
    before_score = await stack.redis.zscore(keys.index, item_id)
    item = ArchivedItem(
        item_id, before_hash["title"], before_hash["desc"], before_hash["cur"], int(before_hash["sp"]),
        int(before_hash["inc"]), int(before_hash["st"]), int(before_hash["et"]), int(before_hash["ct"]),
    )  # fmt: skip
    await stack.redis.delete(keys.item)
    await stack.redis.delete(keys.events)
    await stack.redis.zrem(keys.index, item_id)

    rebuilder = RedisCluster.from_url(stack.cluster.url)
    try:
        restore = restore_item(rebuilder, PARTITIONS, 100, item, len(bids), bids, force=False)
        assert (await restore)[0] == "rebuilt"
        restore = restore_item(rebuilder, PARTITIONS, 100, item, len(bids), bids, force=False)
        assert (await restore)[0] == "exists"
    finally:
        await rebuilder.aclose()
    assert await stack.redis.hgetall(keys.item) == before_hash
    assert await stack.redis.xrange(keys.events) == before_events
    assert await stack.redis.zscore(keys.index, item_id) == before_score
    reply = await stack.stub.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="late", amount=1000))
    assert reply.seq == 7


async def test_fanout_stops_cleanly_after_viewers_of_every_master_leave(cluster_stack: ClusterStack) -> None:
    """A fan-out whose viewers (two items per master, opened and closed together, three times) all left
    still answers SIGTERM at once: its sharded Pub/Sub reader idles instead of spinning when redis-py
    has dropped a node's connection but still lists one of its channels."""
    stack = cluster_stack
    port = free_port()
    fanout = await stack.live.start_fanout(port, env={"FANOUT_REDIS_CLUSTER": "true"})
    owned = await stack.items_on_every_master(2)
    items = [item_id for ids in owned.values() for item_id in ids]
    for round_ in range(3):
        viewers = [await RawViewer.open(stack.live.url(item_id, port=port)) for item_id in items]
        await asyncio.gather(*(v.wait_for(lambda v: bool(v.messages)) for v in viewers))
        for item_id in items:
            await stack.live.bid(item_id)
        await asyncio.gather(*(v.wait_seq(2 + round_) for v in viewers))
        await asyncio.gather(*(v.close() for v in viewers))
        await asyncio.sleep(0.3)  # the unsubscribes reach Redis and their confirmations come back
    started = time.monotonic()
    assert await fanout.stop() == 0, "exited by itself on SIGTERM, not killed after the grace"
    assert time.monotonic() - started < scaled(3)


async def test_soft_close_and_the_close_work_on_every_master(cluster_stack: ClusterStack) -> None:
    """On each master: a late bid extends its item in the bid's step, and the closer closes it once."""
    stack = cluster_stack
    ends_ms = int(time.time() * 1000) + 1500
    request = bidder_pb2.CreateItemRequest(
        title="Lot", currency="EUR", starting_price=100, min_increment=INCREMENT,
        ends_at=Timestamp(seconds=ends_ms // 1000, nanos=(ends_ms % 1000) * 1_000_000),
    )  # fmt: skip
    request.soft_close.window_seconds = 5
    request.soft_close.extension_seconds = 2
    by_master: dict[int, str] = {}
    for _ in range(60):
        item_id = (await stack.stub.CreateItem(request)).item.id
        by_master.setdefault(await stack.cluster.owner_of(item_keys(item_id, PARTITIONS).item), item_id)
        if len(by_master) == len(stack.cluster.nodes):
            break
    assert len(by_master) == len(stack.cluster.nodes)
    for item_id in by_master.values():
        reply = await stack.stub.PlaceBid(
            bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="late", amount=100)
        )
        assert reply.item.seq == 3  # the bid (2), then its extension (3)
        assert reply.item.ends_at.seconds * 1000 + reply.item.ends_at.nanos // 1_000_000 > ends_ms
    deadline = time.monotonic() + scaled(15)
    pending = set(by_master.values())
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        for item_id in list(pending):
            entries: Any = await stack.redis.xrange(item_keys(item_id, PARTITIONS).events)
            kinds = [orjson.loads(fields.get(b"e") or fields["e"])["type"] for _, fields in entries]
            if kinds[-1] == "closed":
                assert kinds == ["created", "bid", "extended", "closed"], kinds
                pending.discard(item_id)
    assert not pending, f"not closed: {pending}"


async def test_notices_reach_a_bidder_from_items_on_every_master(cluster_stack: ClusterStack) -> None:
    """The relay's notice step runs on each item's master and PUBLISHes there; a fan-out with `/ws/me`
    subscribed on one node hears them all: alice is outbid on one item per master."""
    stack = cluster_stack
    secret = secrets.token_urlsafe(32)
    port = free_port()
    await stack.live.start_fanout(port, env={"FANOUT_REDIS_CLUSTER": "true", "AUCTION_JWT_SECRET": secret})
    alice, bob = f"alice-{secrets.token_hex(3)}", f"bob-{secrets.token_hex(3)}"
    token = mint_token(secret, alice, "bidder", ttl_seconds=600)
    owned = await stack.items_on_every_master(1)
    items = {ids[0] for ids in owned.values()}
    viewer = await NoticeViewer.open(
        f"ws://127.0.0.1:{port}/ws/me", subprotocols=[Subprotocol("bearer"), Subprotocol(token)]
    )
    try:
        await viewer.wait_ready()
        for item_id in items:
            for bidder, amount in ((alice, 100), (bob, 110)):
                await stack.stub.PlaceBid(
                    bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
                )
        notices = await viewer.wait_notices(len(items), within=30)
    finally:
        await viewer.close()
    assert {n["item_id"] for n in notices} == items
    assert {(n["type"], n["current_price"]) for n in notices} == {("outbid", 110)}


async def test_an_old_feeds_unsubscribe_leaves_a_new_feed_of_the_item_routed_on_a_cluster(
    cluster_stack: ClusterStack,
) -> None:
    """The old feed of an item stops while its new feed waits for the subscriber's lock (another master's
    first connection being made): the new feed's routing survives, so its own stop later unsubscribes it
    (before, the old feed's stop dropped it and the channel stayed subscribed to a stopped feed)."""
    cluster = RedisCluster.from_url(cluster_stack.cluster.url)  # bytes, as the fan-out's own client
    subscriber = ClusterSubscriber(cluster, metrics=FanoutMetrics())
    await subscriber.start()
    try:
        channel = "auction:live:{cluster-race}"
        old, new = Heard(), Heard()
        await subscriber.subscribe(channel, old)
        await asyncio.wait_for(old.confirmed.wait(), scaled(5))
        async with subscriber._lock:
            subscribing = asyncio.create_task(subscriber.subscribe(channel, new))
            await asyncio.sleep(0)
            assert await subscriber.unsubscribe(channel, old) is True
        await subscribing
        await asyncio.wait_for(new.confirmed.wait(), scaled(5))
        await cluster.execute_command("SPUBLISH", channel, b"routed")
        await asyncio.wait_for(new.arrived.wait(), scaled(5))
        assert new.messages == [b"routed"]
        assert await subscriber.unsubscribe(channel, new) is True
    finally:
        await subscriber.stop()
        await cluster.aclose()
