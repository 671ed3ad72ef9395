"""The archival path end to end: a bidding war lands in PostgreSQL once per bid; history and rebuild."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from auction import AsyncAuctionClient, NotFound
from auction.v1 import bidder_pb2, history_pb2, history_pb2_grpc
from auction_contract.redis_layout import item_keys
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.services import edge_process
from devstack.services_archive import rebuild_command, run_rebuild
from tests.archive_fixtures import PARTITIONS, Accepted, ArchiveStack, archive_stack
from tests.conftest import scaled

__all__ = ["archive_stack"]


@pytest.fixture(scope="module")
async def running(archive_stack: ArchiveStack) -> tuple[ServiceProcess, ServiceProcess]:
    """One relay and one archiver for the module (the stack stops them at the end)."""
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    return relay, archiver


@pytest.fixture
async def history(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> AsyncIterator[history_pb2_grpc.HistoryServiceAsyncStub]:
    endpoint = running[1].endpoint
    assert endpoint is not None
    async with grpc.aio.insecure_channel(endpoint.removeprefix("grpc://")) as channel:
        yield history_pb2_grpc.HistoryServiceStub(channel)


async def place_in_order(stack: ArchiveStack, item_id: str, count: int) -> list[Accepted]:
    """`count` accepted bids from alternating bidders, in one PlaceBids call."""
    bids = [
        bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=f"b{i % 3}", amount=100 + 5 * i)
        for i in range(count)
    ]
    reply = await stack.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
    accepted = []
    for bid, outcome in zip(bids, reply.outcomes, strict=True):
        assert outcome.HasField("accepted"), outcome
        a = outcome.accepted
        accepted.append(Accepted(item_id, a.seq, a.bid_id, bid.bidder, a.amount))
    return accepted


async def test_bidding_war_is_archived_once_with_seq_bidder_and_amount(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """Three bidders fight over each of three items: every accepted bid is in PostgreSQL once, as accepted."""
    items = await archive_stack.create_items(3)
    load = archive_stack.load(items, rate=40, contenders=3)
    await load.start()
    try:
        await asyncio.sleep(scaled(3))
    finally:
        await load.stop()
    assert not load.errors
    assert load.rejected > 0  # it was a war: some bids lost the race
    await archive_stack.wait_archived(load.accepted, items, within=20)
    assert await archive_stack.items_archived(items) == set(items)
    assert await archive_stack.stream_messages() >= len(load.accepted) + len(items)


async def test_bids_carry_their_items_currency(
    archive_stack: ArchiveStack, history: history_pb2_grpc.HistoryServiceAsyncStub
) -> None:
    """Bid events carry their item's currency from the bid step; the archive has it on every bid."""
    (item_id,) = await archive_stack.create_items(1)
    accepted = await place_in_order(archive_stack, item_id, 3)
    await archive_stack.wait_archived(accepted, [item_id], within=20)
    page = await history.ListBids(history_pb2.ListBidsRequest(item_id=item_id))
    assert {bid.currency for bid in page.bids} == {"EUR"}


async def test_history_pages_return_every_bid_once_newest_first(
    archive_stack: ArchiveStack, history: history_pb2_grpc.HistoryServiceAsyncStub
) -> None:
    """Paging with before_seq walks 23 bids in pages of 7, newest first, each once, then stops."""
    (item_id,) = await archive_stack.create_items(1)
    accepted = await place_in_order(archive_stack, item_id, 23)
    await archive_stack.wait_archived(accepted, [item_id], within=20)
    seen: list[history_pb2.Bid] = []
    before, pages = 0, 0
    while True:
        page = await history.ListBids(
            history_pb2.ListBidsRequest(item_id=item_id, limit=7, before_seq=before)
        )
        pages += 1
        seen.extend(page.bids)
        if page.next_before_seq == 0:
            break
        before = page.next_before_seq
    assert pages == 4
    assert [b.seq for b in seen] == sorted((a.seq for a in accepted), reverse=True)
    by_seq = {a.seq: a for a in accepted}
    for bid in seen:
        want = by_seq[bid.seq]
        assert (bid.bid_id, bid.item_id, bid.bidder, bid.amount) == (
            want.bid_id,
            item_id,
            want.bidder,
            want.amount,
        )
        assert bid.placed_at.seconds > 0


async def test_history_of_an_unknown_item_is_not_found(
    history: history_pb2_grpc.HistoryServiceAsyncStub,
) -> None:
    """NOT_FOUND for an item the archive never saw (or an id that cannot exist); bad limits are refused."""
    for item_id in ("no-such-item", "not/an/id", ""):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await history.ListBids(history_pb2.ListBidsRequest(item_id=item_id))
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await history.ListBids(history_pb2.ListBidsRequest(item_id="x", limit=201))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_an_item_without_bids_has_an_empty_history(
    archive_stack: ArchiveStack, history: history_pb2_grpc.HistoryServiceAsyncStub
) -> None:
    """A known item with no bids answers an empty page, not NOT_FOUND."""
    (item_id,) = await archive_stack.create_items(1)
    for _ in range(int(scaled(100))):
        if await archive_stack.items_archived([item_id]):
            break
        await asyncio.sleep(0.1)
    page = await history.ListBids(history_pb2.ListBidsRequest(item_id=item_id))
    assert list(page.bids) == []
    assert page.next_before_seq == 0


async def test_edge_serves_bid_history_from_the_archive(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """GET /items/{id}/bids pages through the archive via the edge; an unknown item is 404 problem+json."""
    (item_id,) = await archive_stack.create_items(1)
    accepted = await place_in_order(archive_stack, item_id, 12)
    await archive_stack.wait_archived(accepted, [item_id], within=20)
    endpoint = running[1].endpoint
    assert endpoint is not None
    port = free_port()
    edge = edge_process(
        archive_stack.bidder_target, port, secrets.token_urlsafe(32), sink=archive_stack.sink,
        log_path=archive_stack.tmp / "edge.log",
        extra_env={"EDGE_HISTORY_TARGET": endpoint.removeprefix("grpc://"), "EDGE_LOG_LEVEL": "warning"},
    )  # fmt: skip
    edge.start_timeout = scaled(30)
    async with edge, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        seqs: list[int] = []
        before: int | None = None
        while True:
            params = {"limit": 5} | ({"before_seq": before} if before else {})
            response = await client.get(f"/items/{item_id}/bids", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            seqs.extend(bid["seq"] for bid in body["bids"])
            assert all(set(bid) == {"bid_id", "seq", "bidder", "amount", "placed_at"} for bid in body["bids"])
            before = body["next_before_seq"]
            if before is None:
                break
        assert seqs == sorted((a.seq for a in accepted), reverse=True)
        missing = await client.get("/items/no-such-item/bids")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        # The SDK's history iterator and the CLI's `history` read the same pages.
        async with AsyncAuctionClient(f"http://127.0.0.1:{port}") as sdk:
            assert [bid.seq async for bid in sdk.iter_bids(item_id, page_size=5)] == seqs
            with pytest.raises(NotFound):
                await sdk.list_bids("no-such-item")
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "auction.cli", "--url", f"http://127.0.0.1:{port}", "--json", "history",
            item_id, "--limit", "7", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await cli.communicate()
        assert cli.returncode == 0
        assert [bid["seq"] for bid in json.loads(out)] == seqs[:7]


async def test_rebuild_restores_an_items_live_state_from_the_archive(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """Redis loses an item: the rebuild brings back its hash, index entry and history; bidding goes on."""
    (item_id,) = await archive_stack.create_items(1)
    accepted = await place_in_order(archive_stack, item_id, 9)
    await archive_stack.wait_archived(accepted, [item_id], within=20)
    keys = item_keys(item_id, PARTITIONS)
    redis = archive_stack.redis_client()
    try:
        before_hash = await redis.hgetall(keys.item)
        before_events = await redis.xrange(keys.events)
        before_score = await redis.zscore(keys.index, item_id)
        await redis.delete(keys.item, keys.events)
        await redis.zrem(keys.index, item_id)
        with pytest.raises(grpc.aio.AioRpcError):
            await archive_stack.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))

        result = await run_rebuild(rebuild_command([item_id]), archive_stack.rebuild_env(), scaled(60))
        assert result.returncode == 0, result.output
        assert f"rebuilt {item_id} seq=10" in result.output
        assert await redis.hgetall(keys.item) == before_hash
        assert await redis.xrange(keys.events) == before_events
        assert await redis.zscore(keys.index, item_id) == before_score

        again = await run_rebuild(rebuild_command([item_id]), archive_stack.rebuild_env(), scaled(60))
        assert again.returncode == 0
        assert f"exists {item_id}" in again.output
    finally:
        await redis.aclose()
    reply = await archive_stack.stub.PlaceBid(
        bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="late", amount=accepted[-1].amount + 5)
    )
    assert reply.seq == 11


async def test_rebuild_reports_items_the_archive_never_saw(archive_stack: ArchiveStack) -> None:
    """Exit status 1 and a `missing` line for an unknown item; nothing is written."""
    result = await run_rebuild(rebuild_command(["ghost"]), archive_stack.rebuild_env(), scaled(60))
    assert result.returncode == 1
    assert "missing ghost" in result.output
