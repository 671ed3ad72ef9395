"""Bid kinds on the archival path end to end: bidder, relay, archiver, rebuild.

Proxy bids are archived like any bid (with their proxy flag); the leader's maximum reaches the archive
only in its audit records (`maximum_audit`, from the audit stream), never in the public history. After Redis
loses an item with a ladder and proxy bids, the rebuild brings back its hash (ladder, buy-now price,
the hidden maximum), history and index exactly, and further bids answer as on a twin item that was never
lost. A buy-now's bid and close are archived once each with the result row, and a buy-now item lost
before any bid still sells at its price after the rebuild.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2, history_pb2, history_pb2_grpc, item_pb2
from auction_contract.redis_layout import ItemField
from devstack.processes import ServiceProcess
from devstack.services_archive import rebuild_command, run_rebuild
from tests.archive_fixtures import ArchiveStack, archive_stack
from tests.conftest import scaled
from tests.test_archive_lifecycle import _live, _lose

__all__ = ["archive_stack"]
LADDER = ((0, 10), (500, 50))


@pytest.fixture(scope="module")
async def running(archive_stack: ArchiveStack) -> tuple[ServiceProcess, ServiceProcess]:
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    return relay, archiver


async def _create(stack: ArchiveStack, buy_now_price: int | None = None) -> str:
    """An hour-long item with the ladder (and a buy-now price when given)."""
    request = bidder_pb2.CreateItemRequest(
        title="Vase", description="blue", currency="EUR", starting_price=100,
        ends_at=Timestamp(seconds=int(time.time()) + 3600),
        increments=[item_pb2.IncrementStep(from_price=a, increment=b) for a, b in LADDER],
    )  # fmt: skip
    if buy_now_price is not None:
        request.buy_now_price = buy_now_price
    return str((await stack.stub.CreateItem(request)).item.id)


async def _bid(
    stack: ArchiveStack, item_id: str, bidder: str, amount: int = 0, max_amount: int | None = None
) -> tuple[object, ...]:
    """The bid's answer, without what differs between twin items (ids, times)."""
    request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
    if max_amount is not None:
        request.max_amount = max_amount
    reply = await stack.stub.PlaceBid(request)
    item = reply.item
    return (reply.seq, reply.amount, reply.leading, item.current_price, item.highest_bidder,
            item.bid_count, item.min_next_bid, item.seq)  # fmt: skip


async def _rebuild(stack: ArchiveStack, item_id: str, seq: int) -> None:
    result = await run_rebuild(rebuild_command([item_id]), stack.rebuild_env(), scaled(60))
    assert result.returncode == 0, result.output
    assert f"rebuilt {item_id} seq={seq}" in result.output


def _events(live: tuple[Any, Any, Any, Any], item_id: str) -> list[dict[str, Any]]:
    """The history's events with what differs between twins (ids, times) dropped."""
    events = [orjson.loads(fields["e"]) for _, fields in live[1]]
    for event in events:
        for name in ("item_id", "bid_id", "placed_at", "closed_at", "created_at", "starts_at", "ends_at"):
            event.pop(name, None)
    return events


async def _fetch(stack: ArchiveStack, query: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _wait_until(stack: ArchiveStack, query: str, *args: Any, within: float = 30) -> None:
    deadline = time.monotonic() + scaled(within)
    while not await _fetch(stack, query, *args):
        assert time.monotonic() < deadline, f"not archived in time: {query} {args}"
        await asyncio.sleep(0.2)


async def _history(
    running: tuple[ServiceProcess, ServiceProcess], item_id: str
) -> history_pb2.ListBidsResponse:
    endpoint = running[1].endpoint
    assert endpoint is not None
    async with grpc.aio.insecure_channel(endpoint.removeprefix("grpc://")) as channel:
        stub = history_pb2_grpc.HistoryServiceStub(channel)
        return await stub.ListBids(history_pb2.ListBidsRequest(item_id=item_id))


async def test_proxy_bids_are_archived_with_the_maximum_for_audit_only_and_rebuilt_like_a_twin(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """On an item with a ladder and on its twin: ann bids a maximum of 400, bob's 200 is outbid by ann's
    proxy at 210, ann raises her maximum to 700 (no event). The archive holds the bids with their proxy
    flags, ann's maximums and the raise in `maximum_audit`, the ladder and buy-now price
    on the item; the public history names no maximum. Redis loses the item; the rebuild restores hash
    (the hidden maximum included), history and index exactly, and further bids on both twins (carl's
    maximum of 650 is beaten by ann's restored 700; dee's 750 wins) give the same answers and events."""
    lost, twin = await _create(archive_stack, 5000), await _create(archive_stack, 5000)
    opening = [("ann", 0, 400), ("bob", 200, None), ("ann", 0, 700)]
    for item_id in (lost, twin):
        answers = [await _bid(archive_stack, item_id, who, amount, top) for who, amount, top in opening]
        assert answers == [
            (2, 100, True, 100, "ann", 1, 110, 2),
            (3, 200, False, 210, "ann", 3, 220, 4),
            (4, 210, True, 210, "ann", 3, 220, 4),
        ]
    await _wait_until(
        archive_stack, "SELECT 1 FROM maximum_audit WHERE item_id = $1 AND kind = 'raise'", lost
    )
    await _wait_until(archive_stack, "SELECT 1 FROM bids WHERE item_id = $1 AND seq = 4", lost)
    bids = await _fetch(
        archive_stack, "SELECT seq, bidder, amount, proxy FROM bids WHERE item_id = $1 ORDER BY seq", lost
    )
    assert [tuple(row) for row in bids] == [
        (2, "ann", 100, True),
        (3, "bob", 200, False),
        (4, "ann", 210, True),
    ]
    audits = await _fetch(archive_stack, "SELECT seq, kind, bidder, max_amount FROM maximum_audit"
                          " WHERE item_id = $1 ORDER BY seq, kind", lost)  # fmt: skip
    assert [tuple(row) for row in audits] == [
        (2, "bid", "ann", 400),
        (4, "bid", "ann", 400),
        (4, "raise", "ann", 700),
    ]
    (item,) = await _fetch(
        archive_stack, "SELECT increments, buy_now_price FROM items WHERE item_id = $1", lost
    )
    assert orjson.loads(item["increments"]) == [{"from": a, "increment": b} for a, b in LADDER]
    assert item["buy_now_price"] == 5000

    page = await _history(running, lost)
    assert [(b.seq, b.bidder, b.amount) for b in page.bids] == [
        (4, "ann", 210),
        (3, "bob", 200),
        (2, "ann", 100),
    ]
    shown = {value for bid in page.bids for _, value in bid.ListFields() if isinstance(value, int)}
    assert not shown & {400, 700}, shown
    assert {f.name for f in history_pb2.Bid.DESCRIPTOR.fields} == {
        "bid_id", "item_id", "seq", "bidder", "amount", "currency", "placed_at"
    }  # fmt: skip

    before = await _live(archive_stack, lost)
    assert before[0][ItemField.LEADER_MAX.value] == "700"
    await _lose(archive_stack, lost)
    await _rebuild(archive_stack, lost, 4)
    assert await _live(archive_stack, lost) == before

    further = [("carl", 0, 650), ("dee", 750, None), ("ann", 0, 800)]
    got = {item_id: [await _bid(archive_stack, item_id, *bid) for bid in further] for item_id in (lost, twin)}
    assert got[lost] == got[twin]
    assert got[lost][0][2:5] == (False, 700, "ann")  # ann's restored maximum defends
    assert got[lost][1][2:5] == (True, 750, "dee")
    after = {item_id: await _live(archive_stack, item_id) for item_id in (lost, twin)}
    assert _events(after[lost], lost) == _events(after[twin], twin)
    moments = {ItemField.CREATED_MS.value, ItemField.STARTS_MS.value, ItemField.ENDS_MS.value}
    hashes = [{k: v for k, v in after[i][0].items() if k not in moments} for i in (lost, twin)]
    assert hashes[0] == hashes[1]


async def test_a_buy_now_is_archived_once_with_its_result_and_survives_a_rebuild_before_it(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """A buy-now item lost before any bid is rebuilt with its buy-now price; a buy then sells it: the
    bid and the close reach the archive once each, with one result row equal to the close, and a
    second rebuild brings back the closed item exactly."""
    item_id = await _create(archive_stack, 900)
    await _wait_until(archive_stack, "SELECT 1 FROM items WHERE item_id = $1", item_id)
    before = await _live(archive_stack, item_id)
    await _lose(archive_stack, item_id)
    await _rebuild(archive_stack, item_id, 1)
    assert await _live(archive_stack, item_id) == before

    reply = await archive_stack.stub.BuyNow(bidder_pb2.BuyNowRequest(item_id=item_id, bidder="erin"))
    assert (reply.seq, reply.amount, reply.item.result.winner) == (2, 900, "erin")
    await _wait_until(archive_stack, "SELECT 1 FROM auction_results WHERE item_id = $1", item_id)
    bids = await _fetch(archive_stack, "SELECT seq, bidder, amount, proxy FROM bids"
                        " WHERE item_id = $1", item_id)  # fmt: skip
    assert [tuple(row) for row in bids] == [(2, "erin", 900, False)]
    assert await _fetch(archive_stack, "SELECT 1 FROM maximum_audit WHERE item_id = $1", item_id) == []
    results = await _fetch(archive_stack, "SELECT seq, outcome, winner, final_price, bid_count"
                           " FROM auction_results WHERE item_id = $1", item_id)  # fmt: skip
    assert [tuple(row) for row in results] == [(3, "sold", "erin", 900, 1)]
    others = await _fetch(archive_stack, "SELECT 1 FROM other_events WHERE item_id = $1", item_id)
    assert others == []

    sold = await _live(archive_stack, item_id)
    assert sold[3] is None  # closed: in no ends set
    await _lose(archive_stack, item_id)
    await _rebuild(archive_stack, item_id, 3)
    assert await _live(archive_stack, item_id) == sold
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await archive_stack.stub.BuyNow(bidder_pb2.BuyNowRequest(item_id=item_id, bidder="finn"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
