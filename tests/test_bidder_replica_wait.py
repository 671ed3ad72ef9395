"""`BIDDER_REDIS_WAIT_REPLICAS`: every answer waits for a real replica, for each write strategy.

A primary and a replica of this module's own (the tests stop the replica), a bidder in this process
waiting for one replica. What is checked is what the option promises: at the moment any answer arrives
(accepted, refused, replayed, created, bought), the replica has acknowledged the state it rests on (the
primary's record of the replica's offset is past the primary's offset before the call: local replication
is too fast for a read of the replica to tell), and a call made while the replica is paused is answered
only once it resumes; with the replica stopped every step is answered UNAVAILABLE and changes nothing
twice, and the retry with the same key once the replica is back gets the same bid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import cast

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY
from redis.asyncio import BlockingConnectionPool, Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_contract.redis_layout import ItemField, ItemKeys, item_keys
from core_bidder.errors import ReplicasBehind
from core_bidder.replica_wait import ReplicaWait
from core_bidder.server import BidderServer
from core_bidder.settings import MAX_WAIT_TIMEOUT_MS, BidderSettings
from devstack.servers import RedisReplica, RedisServer
from edge_gateway.settings import EdgeSettings
from tests.conftest import running_server, scaled

# Long enough that a healthy replica on a loaded CI machine always confirms in time (with 300 ms a CI run
# saw the module's first creates answered UNAVAILABLE, right after the replica's first synchronisation,
# which `RedisReplica.start` already waits for); the paused and stopped cases wait it out.
WAIT_MS = min(MAX_WAIT_TIMEOUT_MS, int(scaled(1.0) * 1000))
PARTITIONS = 16


@dataclass
class Servers:
    primary: RedisServer
    replica: RedisReplica
    on_primary: Redis
    on_replica: Redis

    async def stop_replica(self) -> None:
        await self.replica.stop()

    async def start_replica(self) -> None:
        """Back on its port and data, caught up with the primary; a fresh client (the old one's
        connections died with the process)."""
        await self.replica.restart()
        await self.replica.wait_synced(scaled(30))
        await self.on_replica.aclose()
        self.on_replica = Redis.from_url(self.replica.url, decode_responses=True)


@dataclass
class Bidder:
    strategy: str
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    servers: Servers
    server: BidderServer | None = None


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with (
        running_server(RedisServer, "auction-wait-primary-") as primary,
        running_server(RedisReplica, "auction-wait-replica-", primary=primary) as replica,
    ):
        found = Servers(
            primary, replica,
            Redis.from_url(primary.url, decode_responses=True),
            Redis.from_url(replica.url, decode_responses=True),
        )  # fmt: skip
        try:
            yield found
        finally:
            await found.on_primary.aclose()
            await found.on_replica.aclose()


@pytest.fixture(scope="module", params=["lua", "watch"])
async def bidder(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[Bidder]:
    settings = BidderSettings(
        redis_url=servers.primary.url, port=0, strategy=request.param, redis_wait_replicas=1,
        redis_wait_timeout_ms=WAIT_MS, health_interval_seconds=0.2, shutdown_grace_seconds=0, closer=False,
    )  # fmt: skip
    server = BidderServer(settings)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Bidder(request.param, bidder_pb2_grpc.BidderServiceStub(channel), servers, server)
    finally:
        await channel.close(grace=None)
        await server.stop()


def _ends_in(seconds: float) -> Timestamp:
    return Timestamp(seconds=int(time.time() + seconds))


async def _create(b: Bidder, buy_now_price: int | None = None, ends_in: float = 3600) -> str:
    request = bidder_pb2.CreateItemRequest(
        title="Lamp", currency="USD", starting_price=100, min_increment=10, ends_at=_ends_in(ends_in),
        buy_now_price=buy_now_price,
    )  # fmt: skip
    return str((await b.stub.CreateItem(request)).item.id)


def _keys(item_id: str) -> ItemKeys:
    return item_keys(item_id, PARTITIONS)


def _min_next_bid(err: grpc.aio.AioRpcError) -> int:
    trailer = cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ())
    for key, value in trailer:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            info = error_details_pb2.ErrorInfo()
            status_pb2.Status.FromString(value).details[0].Unpack(info)
            return int(info.metadata["min_next_bid"])
    raise AssertionError("no min_next_bid in the rejection")


def _code(answer: object) -> grpc.StatusCode | None:
    """The status of a failed call; None for an answer."""
    return answer.code() if isinstance(answer, grpc.aio.AioRpcError) else None


async def _offset(primary: Redis) -> int:
    """The primary's replication offset: past every write it has completed."""
    return int((await primary.info("replication"))["master_repl_offset"])


async def _replica_acknowledged(primary: Redis) -> int:
    """The replica's offset as the primary last heard it acknowledge (a WAIT asks for it; otherwise the
    replica tells once a second)."""
    return int((await primary.info("replication"))["slave0"]["offset"])


def _behind_waits() -> float:
    return REGISTRY.get_sample_value("bidder_redis_waits_total", {"outcome": "behind"}) or 0.0


async def _place(
    b: Bidder, item_id: str, bidder: str, amount: int, key: str = ""
) -> bidder_pb2.PlaceBidResponse | grpc.aio.AioRpcError:
    request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount, idempotency_key=key)
    try:
        return await b.stub.PlaceBid(request)
    except grpc.aio.AioRpcError as err:
        return err


async def test_every_answer_rests_on_state_the_replica_already_holds(bidder: Bidder) -> None:
    """Concurrent bidders, unary and batched, with and without keys: when each answer arrives the replica
    has acknowledged an offset past the primary's before the call (so every write the answer rests on,
    the refusals' too: they wrote nothing, the bids that refused them did); and it has the bid's event,
    the item at least at its seq, the price that refused a too-low bid."""
    item_id = await _create(bidder)
    keys = _keys(item_id)
    primary, replica = bidder.servers.on_primary, bidder.servers.on_replica
    assert await replica.hget(keys.item, ItemField.SEQ.value) == "1"  # the create waited too
    accepted: list[int] = []
    refused = 0

    async def check_acknowledged(before: int) -> None:
        acknowledged = await _replica_acknowledged(primary)
        assert acknowledged > before, (
            f"answered with the replica at {acknowledged}, the primary was at {before}"
        )

    async def check_accepted(seq: int, before: int) -> None:
        await check_acknowledged(before)
        assert await replica.xrange(keys.events, f"{seq}-0", f"{seq}-0"), f"bid seq {seq} not on the replica"
        assert int(await replica.hget(keys.item, ItemField.SEQ.value) or 0) >= seq
        accepted.append(seq)

    async def check_refused(min_next_bid: int, before: int) -> None:
        nonlocal refused
        await check_acknowledged(before)
        assert int(await replica.hget(keys.item, ItemField.PRICE.value) or 0) + 10 >= min_next_bid
        refused += 1

    async def unary(name: str) -> None:
        amount = 100
        for n in range(12):
            before = await _offset(primary)
            answer = await _place(bidder, item_id, name, amount, key=f"{name}-{n}" if n % 2 else "")
            if isinstance(answer, grpc.aio.AioRpcError):
                assert answer.code() is grpc.StatusCode.FAILED_PRECONDITION, answer
                amount = _min_next_bid(answer)
                await check_refused(amount, before)
            else:
                await check_accepted(answer.seq, before)
                amount = answer.item.min_next_bid

    async def batched(name: str) -> None:
        amount = 100
        for n in range(6):
            bids = [
                bidder_pb2.PlaceBidRequest(
                    item_id=item_id, bidder=name, amount=amount + 10 * i, idempotency_key=""
                )
                for i in range(3)
            ]
            before = await _offset(primary)
            reply = await bidder.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
            for outcome in reply.outcomes:
                if outcome.HasField("accepted"):
                    await check_accepted(outcome.accepted.seq, before)
                    amount = max(amount, outcome.accepted.item.min_next_bid)
                else:
                    assert outcome.rejected.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], (n, outcome)
                    info = error_details_pb2.ErrorInfo()
                    outcome.rejected.details[0].Unpack(info)
                    amount = max(amount, int(info.metadata["min_next_bid"]))
                    await check_refused(amount, before)

    await asyncio.gather(*(unary(f"u{i}") for i in range(6)), *(batched(f"p{i}") for i in range(2)))
    assert len(accepted) == len(set(accepted)) > 10
    assert refused > 0
    on_primary = await primary.hgetall(keys.item)
    assert await replica.hgetall(keys.item) == on_primary
    assert int(on_primary[ItemField.BID_COUNT.value]) == len(accepted)


async def test_an_answer_is_held_back_while_the_replica_is_paused(bidder: Bidder) -> None:
    """A bid sent while the replica is SIGSTOPped (connected, answering nothing) is not answered until
    it resumes; then it is accepted with the replica holding it, or, had the timeout passed first,
    UNAVAILABLE and its retry with the same key gets the same bid."""
    item_id = await _create(bidder)
    servers = bidder.servers
    servers.replica.pause()
    try:
        answer = asyncio.create_task(_place(bidder, item_id, "ann", 100, key="held-1"))
        await asyncio.sleep(WAIT_MS / 3000)
        assert not answer.done(), f"answered while the replica could not have the bid: {answer.result()}"
    finally:
        servers.replica.resume()
    placed = await answer
    if _code(placed) is grpc.StatusCode.UNAVAILABLE:
        placed = await _place(bidder, item_id, "ann", 100, key="held-1")
    assert isinstance(placed, bidder_pb2.PlaceBidResponse), placed
    assert placed.seq == 2
    assert await servers.on_replica.xrange(_keys(item_id).events, "2-0", "2-0")


async def test_a_bid_queued_behind_its_items_batch_waits_twice_within_the_edges_deadline(
    bidder: Bidder,
) -> None:
    """Why the timeout is capped (`MAX_WAIT_TIMEOUT_MS`): with the replica paused, a bid that arrives
    while its item's batch is in flight is answered after that batch's WAIT and its own, so UNAVAILABLE
    comes after up to two timeouts; two of the largest allowed still fit in the edge's default deadline,
    with a second to spare for the steps themselves."""
    item_id = await _create(bidder)
    servers = bidder.servers
    servers.replica.pause()
    try:
        first = asyncio.create_task(_place(bidder, item_id, "ann", 100, key="queued-1"))
        await asyncio.sleep(WAIT_MS / 3000)  # the first batch is in its WAIT now
        started = time.perf_counter()
        second = await _place(bidder, item_id, "bob", 110, key="queued-2")
        waited = time.perf_counter() - started
        assert _code(await first) is grpc.StatusCode.UNAVAILABLE
        assert _code(second) is grpc.StatusCode.UNAVAILABLE, second
    finally:
        servers.replica.resume()
    assert waited > 1.4 * WAIT_MS / 1000, f"answered after {waited:.3f} s: not behind the first batch"
    edge_deadline_ms = EdgeSettings.model_fields["grpc_timeout_seconds"].default * 1000
    assert edge_deadline_ms >= 2 * MAX_WAIT_TIMEOUT_MS + 1000


async def test_with_the_replica_stopped_steps_are_unavailable_and_retries_get_the_same_bid(
    bidder: Bidder,
) -> None:
    """Replica stopped: a bid, a batched bid, a refusal and a replayed retry are each UNAVAILABLE (the
    bids stay applied on the primary, once); with the replica back, the retries with the same keys get
    the very same bids (same id and seq), and no second bid exists anywhere."""
    item_id = await _create(bidder)
    keys = _keys(item_id)
    servers = bidder.servers
    behind_before = _behind_waits()
    await servers.stop_replica()
    try:
        first = await _place(bidder, item_id, "ann", 100, key="ann-1")
        assert _code(first) is grpc.StatusCode.UNAVAILABLE, first
        assert isinstance(first, grpc.aio.AioRpcError)
        assert "retry with the same idempotency key" in (first.details() or "")
        batch = bidder_pb2.PlaceBidsRequest(
            bids=[
                bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="bob", amount=120, idempotency_key="bob-1")
            ]
        )
        (outcome,) = (await bidder.stub.PlaceBids(batch)).outcomes
        assert outcome.rejected.code == grpc.StatusCode.UNAVAILABLE.value[0], outcome
        low = await _place(bidder, item_id, "cy", 50)
        assert _code(low) is grpc.StatusCode.UNAVAILABLE, low
        again = await _place(bidder, item_id, "ann", 100, key="ann-1")
        assert _code(again) is grpc.StatusCode.UNAVAILABLE
        # Applied on the primary, each once: Redis cannot undo them, and a replay adds nothing.
        assert await servers.on_primary.hget(keys.item, ItemField.BID_COUNT.value) == "2"
        assert await servers.on_primary.xlen(keys.events) == 3
        assert _behind_waits() >= behind_before + 4
    finally:
        await servers.start_replica()
    retried = await _place(bidder, item_id, "ann", 100, key="ann-1")
    assert isinstance(retried, bidder_pb2.PlaceBidResponse), retried
    assert (retried.seq, retried.amount) == (2, 100)
    (outcome,) = (await bidder.stub.PlaceBids(batch)).outcomes
    assert outcome.HasField("accepted"), outcome
    assert (outcome.accepted.seq, outcome.accepted.amount) == (3, 120)
    low = await _place(bidder, item_id, "cy", 50)
    assert _code(low) is grpc.StatusCode.FAILED_PRECONDITION
    for redis in (servers.on_primary, servers.on_replica):
        assert await redis.hget(keys.item, ItemField.BID_COUNT.value) == "2"
        assert [entry_id for entry_id, _ in await redis.xrange(keys.events) or []] == ["1-0", "2-0", "3-0"]


async def test_buy_now_and_create_wait_too(bidder: Bidder) -> None:
    """With the replica stopped a buy-now is UNAVAILABLE (sold once on the primary) and so is a create;
    back, the buyer's retry gets the same sale, already on the replica."""
    item_id = await _create(bidder, buy_now_price=500)
    keys = _keys(item_id)
    servers = bidder.servers
    buy = bidder_pb2.BuyNowRequest(item_id=item_id, bidder="dee", idempotency_key="dee-1")
    await servers.stop_replica()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as bought:
            await bidder.stub.BuyNow(buy)
        assert bought.value.code() is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as created:
            await _create(bidder)
        assert created.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await servers.start_replica()
    sale = await bidder.stub.BuyNow(buy)
    assert (sale.seq, sale.amount) == (2, 500)
    assert await servers.on_replica.hget(keys.item, ItemField.WINNER.value) == "dee"
    assert await servers.on_replica.xlen(keys.events) == 3  # created, bid, closed: once


async def test_a_close_is_on_the_replica_when_the_closer_returns(bidder: Bidder) -> None:
    """The closer waits too: once its tick returns, the replica holds the results. With the replica
    stopped the close still happens on the primary (nobody waits for its answer), once, and reaches the
    replica when it is back."""
    assert bidder.server is not None
    closer = bidder.server.closer  # not started here (closer=False): ticked by hand
    servers = bidder.servers
    sold, unsold = await _create(bidder, ends_in=1.5), await _create(bidder, ends_in=1.5)
    assert isinstance(await _place(bidder, sold, "eve", 100, key="eve-1"), bidder_pb2.PlaceBidResponse)
    await asyncio.sleep(2.0)  # the auctions' time passing, not a wait for replication
    assert await closer.tick() == 2
    assert await servers.on_replica.hget(_keys(sold).item, ItemField.OUTCOME.value) == "sold"
    assert await servers.on_replica.hget(_keys(unsold).item, ItemField.OUTCOME.value) == "no_sale"
    late = await _create(bidder, ends_in=1.5)
    await servers.stop_replica()
    try:
        await asyncio.sleep(2.0)
        assert await closer.tick() == 1
        assert await servers.on_primary.hget(_keys(late).item, ItemField.OUTCOME.value) == "no_sale"
    finally:
        await servers.start_replica()
    assert await closer.tick() == 0
    assert await servers.on_replica.hget(_keys(late).item, ItemField.OUTCOME.value) == "no_sale"
    assert await servers.on_replica.xlen(_keys(late).events) == 2  # created, closed: once


async def test_the_fence_covers_writes_made_on_other_connections(servers: Servers) -> None:
    """Why each WAIT follows a fence: a bare WAIT on a connection that wrote earlier answers at once for
    a later write of another connection the replica never got; with the fence it is counted behind."""
    one_connection = BlockingConnectionPool.from_url(servers.primary.url, max_connections=1)
    waiter, writer = Redis(connection_pool=one_connection), Redis.from_url(servers.primary.url)
    try:
        await waiter.set("fence-test:own", "1")
        assert await waiter.wait(1, WAIT_MS) == 1
        servers.replica.pause()
        try:
            await writer.set("fence-test:other", "2")
            assert await waiter.wait(1, WAIT_MS) == 1  # only its own, older write
            behind = await ReplicaWait(1, WAIT_MS).after(waiter)
            assert isinstance(behind, ReplicasBehind)
            assert (behind.wanted, behind.acknowledged) == (1, 0)
        finally:
            servers.replica.resume()
        assert await ReplicaWait(1, int(scaled(3) * 1000)).after(waiter) is None
    finally:
        await waiter.aclose()
        await one_connection.disconnect()
        await writer.aclose()


async def test_without_the_option_the_bidder_sends_no_wait(servers: Servers) -> None:
    """The default path is unchanged: bids, a create and a buy-now send no WAIT (INFO commandstats)."""
    settings = BidderSettings(
        redis_url=servers.primary.url, port=0, health_interval_seconds=0.2, shutdown_grace_seconds=0
    )
    server = BidderServer(settings)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        plain = Bidder("lua", bidder_pb2_grpc.BidderServiceStub(channel), servers)
        await servers.on_primary.config_resetstat()
        item_id = await _create(plain, buy_now_price=1000)
        other = await _create(plain)
        for amount in (100, 110, 120):
            assert isinstance(
                await _place(plain, other, "ann", amount, key=f"k{amount}"), bidder_pb2.PlaceBidResponse
            )
        await plain.stub.BuyNow(bidder_pb2.BuyNowRequest(item_id=item_id, bidder="bo"))
        stats = await servers.on_primary.info("commandstats")
        assert "cmdstat_evalsha" in stats
        assert "cmdstat_wait" not in stats
    finally:
        await channel.close(grace=None)
        await server.stop()


def test_wait_is_refused_on_a_cluster_and_bounded() -> None:
    """Cluster mode refuses the option at startup, saying why; the timeout stays under half the edge's
    deadline (see the test above); 0 replicas (the default) is off."""
    with pytest.raises(
        ValueError, match="BIDDER_REDIS_WAIT_REPLICAS is not supported with BIDDER_REDIS_CLUSTER"
    ):
        BidderSettings(redis_cluster=True, redis_wait_replicas=1)
    with pytest.raises(ValueError, match="less than or equal to 2000"):
        BidderSettings(redis_wait_timeout_ms=2001)
    assert BidderSettings(redis_wait_timeout_ms=2000).redis_wait_timeout_ms == MAX_WAIT_TIMEOUT_MS
    assert ReplicaWait.of(BidderSettings()) is None
    assert BidderSettings(redis_cluster=True).redis_wait_replicas == 0
