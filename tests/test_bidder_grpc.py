"""The bidder over real gRPC on real Redis, for each write strategy (Lua and WATCH/MULTI/EXEC)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import cast

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from redis.crc import key_slot

from auction.v1 import bidder_pb2, item_pb2
from auction_contract.events import bid_event
from auction_contract.redis_layout import item_keys
from auction_contract.wire_time import rfc3339_ms
from tests.bidder_fixtures import BidderHandle, bidder

__all__ = ["bidder"]


def ts(offset_s: float) -> Timestamp:
    ms = int((time.time() + offset_s) * 1000)
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


async def new_item(
    h: BidderHandle, *, starts_in: float | None = None, ends_in: float = 3600
) -> item_pb2.Item:
    request = bidder_pb2.CreateItemRequest(
        title="Clock", description="A clock", currency="EUR", starting_price=100, min_increment=10,
        ends_at=ts(ends_in),
    )  # fmt: skip
    if starts_in is not None:
        request.starts_at.CopyFrom(ts(starts_in))
    return (await h.stub.CreateItem(request)).item


async def bid(h: BidderHandle, item_id: str, bidder_id: str, amount: int, key: str = "") -> object:
    request = bidder_pb2.PlaceBidRequest(
        item_id=item_id, bidder=bidder_id, amount=amount, idempotency_key=key
    )
    try:
        return await h.stub.PlaceBid(request)
    except grpc.aio.AioRpcError as exc:
        return exc


def reason_of(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None or not status.details:
        return exc.code(), "", {}
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return exc.code(), info.reason, dict(info.metadata)


async def test_create_then_get_shows_a_fresh_open_item(bidder: BidderHandle) -> None:
    """A new item is open, has seq 1, no price, and min_next_bid == starting_price."""
    item = await new_item(bidder)
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert got.status == item_pb2.ITEM_STATUS_OPEN
    assert (got.seq, got.bid_count, got.min_next_bid) == (1, 0, 100)
    assert not got.HasField("current_price")
    assert not got.HasField("highest_bidder")


async def test_accepted_bids_advance_seq_price_and_minimum(bidder: BidderHandle) -> None:
    """Each accepted bid gets the next seq and moves current price, bidder, count and minimum."""
    item = await new_item(bidder)
    first = await bid(bidder, item.id, "alice", 100)
    second = await bid(bidder, item.id, "bob", 150)
    assert isinstance(first, bidder_pb2.PlaceBidResponse)
    assert isinstance(second, bidder_pb2.PlaceBidResponse)
    assert (first.seq, second.seq) == (2, 3)
    assert second.bid_id == f"{item.id}.3"
    assert second.item.current_price == 150
    assert second.item.highest_bidder == "bob"
    assert (second.item.bid_count, second.item.min_next_bid) == (2, 160)


async def test_too_low_is_failed_precondition_with_min_next_bid(bidder: BidderHandle) -> None:
    """A bid under the minimum is FAILED_PRECONDITION/BID_TOO_LOW carrying min_next_bid; nothing changes."""
    item = await new_item(bidder)
    await bid(bidder, item.id, "alice", 100)
    exc = await bid(bidder, item.id, "bob", 105)
    assert isinstance(exc, grpc.aio.AioRpcError)
    assert reason_of(exc) == (grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW", {"min_next_bid": "110"})
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert (got.seq, got.current_price, got.highest_bidder) == (2, 100, "alice")


async def test_window_is_enforced_before_start_and_after_end(bidder: BidderHandle) -> None:
    """Before starts_at: AUCTION_NOT_OPEN; after ends_at: AUCTION_CLOSED."""
    later = await new_item(bidder, starts_in=600)
    exc = await bid(bidder, later.id, "alice", 100)
    assert isinstance(exc, grpc.aio.AioRpcError)
    assert reason_of(exc)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "AUCTION_NOT_OPEN")
    assert later.status == item_pb2.ITEM_STATUS_SCHEDULED

    brief = await new_item(bidder, ends_in=0.3)
    await asyncio.sleep(0.4)
    exc = await bid(bidder, brief.id, "alice", 100)
    assert isinstance(exc, grpc.aio.AioRpcError)
    assert reason_of(exc)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "AUCTION_CLOSED")
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=brief.id))).item
    assert got.status == item_pb2.ITEM_STATUS_CLOSED
    assert got.bid_count == 0


async def test_idempotent_replay_returns_the_first_outcome(bidder: BidderHandle) -> None:
    """Same bidder and key: the first answer again, no second bid; another amount: IDEMPOTENCY_KEY_REUSED."""
    item = await new_item(bidder)
    answers = await asyncio.gather(*(bid(bidder, item.id, "alice", 120, key="k-1") for _ in range(20)))
    assert all(isinstance(a, bidder_pb2.PlaceBidResponse) for a in answers)
    assert len({a.SerializeToString(deterministic=True) for a in answers}) == 1  # type: ignore[attr-defined]
    reused = await bid(bidder, item.id, "alice", 130, key="k-1")
    assert isinstance(reused, grpc.aio.AioRpcError)
    assert reason_of(reused)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "IDEMPOTENCY_KEY_REUSED")
    other_bidder = await bid(bidder, item.id, "bob", 130, key="k-1")
    assert isinstance(other_bidder, bidder_pb2.PlaceBidResponse)
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert (got.bid_count, got.seq) == (2, 3)


async def test_idempotent_rejection_is_replayed_too(bidder: BidderHandle) -> None:
    """A stored rejection stays the answer for its key, even after the price would allow it."""
    item = await new_item(bidder)
    await bid(bidder, item.id, "bob", 200)
    low = await bid(bidder, item.id, "alice", 150, key="k-low")
    again = await bid(bidder, item.id, "alice", 150, key="k-low")
    assert isinstance(low, grpc.aio.AioRpcError)
    assert isinstance(again, grpc.aio.AioRpcError)
    assert reason_of(low) == reason_of(again) == (
        grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW", {"min_next_bid": "210"}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("item_id", "bidder_id", "amount", "code"),
    [
        ("missing-item", "alice", 100, grpc.StatusCode.NOT_FOUND),
        ("bad id!", "alice", 100, grpc.StatusCode.NOT_FOUND),
        ("x" * 65, "alice", 100, grpc.StatusCode.NOT_FOUND),
        (None, "alice", 0, grpc.StatusCode.INVALID_ARGUMENT),
        (None, "alice", -5, grpc.StatusCode.INVALID_ARGUMENT),
        (None, "alice", 2**53 + 1, grpc.StatusCode.INVALID_ARGUMENT),
        (None, "", 100, grpc.StatusCode.INVALID_ARGUMENT),
        (None, "bad bidder", 100, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_bad_input_gets_a_status_and_changes_nothing(
    bidder: BidderHandle, item_id: str | None, bidder_id: str, amount: int, code: grpc.StatusCode
) -> None:
    """Unknown or absurd items are NOT_FOUND, bad amounts and bidders INVALID_ARGUMENT; no write."""
    item = await new_item(bidder)
    exc = await bid(bidder, item_id or item.id, bidder_id, amount)
    assert isinstance(exc, grpc.aio.AioRpcError)
    assert exc.code() == code
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert got.seq == 1


async def test_events_go_to_history_outbox_and_channel_serialized_once(bidder: BidderHandle) -> None:
    """One accepted bid: the same bytes in the item's history (id <seq>-0), the outbox and Pub/Sub."""
    item = await new_item(bidder)
    keys = item_keys(item.id, bidder.server.settings.partitions)
    pubsub = bidder.redis.pubsub()
    await pubsub.subscribe(keys.channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    placed = await bid(bidder, item.id, "carol", 100)
    assert isinstance(placed, bidder_pb2.PlaceBidResponse)
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message:
            break
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    history = cast("list[tuple[str, dict[str, str]]]", await bidder.redis.xrange(keys.events))
    assert [entry_id for entry_id, _ in history] == ["1-0", "2-0"]
    event = history[1][1]["e"]
    placed_ms = placed.placed_at.seconds * 1000 + placed.placed_at.nanos // 1_000_000
    assert event == bid_event(item.id, 2, "carol", 100, placed_ms, 110, currency="EUR")
    assert orjson.loads(event)["placed_at"] == rfc3339_ms(placed_ms)
    outbox_entries = cast("list[tuple[str, dict[str, str]]]", await bidder.redis.xrange(keys.outbox))
    outbox = [fields["e"] for _, fields in outbox_entries]
    assert event in outbox
    assert message is not None
    assert message["data"] == event


async def test_all_keys_of_an_item_share_one_cluster_slot(bidder: BidderHandle) -> None:
    """Every key of one item, its channel and its partition's outbox hash to the same slot."""
    item = await new_item(bidder)
    await bid(bidder, item.id, "alice", 100, key="slot-check")
    keys = item_keys(item.id, bidder.server.settings.partitions)
    stored = [k async for k in bidder.redis.scan_iter(match=f"*{item.id}*")]
    slots = {key_slot(k.encode()) for k in [*stored, keys.outbox, keys.index, keys.channel]}
    assert len(stored) >= 3
    assert len(slots) == 1


async def test_list_items_pages_newest_first_and_filters_by_status(bidder: BidderHandle) -> None:
    """Pages are disjoint, newest first, and the status filter holds."""
    made = [await new_item(bidder) for _ in range(5)]
    await asyncio.sleep(0.002)  # "newest" has millisecond resolution: items of one millisecond sort by id
    scheduled = await new_item(bidder, starts_in=600)
    seen: list[str] = []
    cursor = ""
    while True:
        page = await bidder.stub.ListItems(bidder_pb2.ListItemsRequest(limit=2, cursor=cursor))
        seen.extend(i.id for i in page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    ours = [i for i in seen if i in {m.id for m in made} | {scheduled.id}]
    assert ours[0] == scheduled.id
    only = await bidder.stub.ListItems(
        bidder_pb2.ListItemsRequest(status=item_pb2.ITEM_STATUS_SCHEDULED, limit=200)
    )
    assert scheduled.id in {i.id for i in only.items}
    assert all(i.status == item_pb2.ITEM_STATUS_SCHEDULED for i in only.items)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await bidder.stub.ListItems(bidder_pb2.ListItemsRequest(cursor="%%%"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_is_serving_and_reflection_lists_services(bidder: BidderHandle) -> None:
    """The standard health service answers SERVING while Redis is reachable."""
    channel = grpc.aio.insecure_channel(bidder.target)
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
    await channel.close(grace=None)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "change",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"currency": "usd"},
        {"currency": "EURO"},
        {"starting_price": -1},
        {"starting_price": 2**53 + 1},
        {"min_increment": 0},
        {"ends_in": -10},
        {"starts_in": 100, "ends_in": 50},
    ],
)
async def test_bad_item_is_invalid_argument(bidder: BidderHandle, change: dict[str, object]) -> None:
    """Every malformed item is refused with INVALID_ARGUMENT."""
    fields: dict[str, object] = {
        "title": "Vase", "currency": "USD", "starting_price": 1, "min_increment": 1, "ends_in": 60,
    }  # fmt: skip
    fields.update(change)
    starts_in = fields.pop("starts_in", None)
    ends_in = fields.pop("ends_in")
    assert isinstance(ends_in, int)
    request = bidder_pb2.CreateItemRequest(ends_at=ts(ends_in), **fields)  # type: ignore[arg-type]
    if isinstance(starts_in, int):
        request.starts_at.CopyFrom(ts(starts_in))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await bidder.stub.CreateItem(request)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_place_bids_applies_each_item_in_order_with_single_call_outcomes(bidder: BidderHandle) -> None:
    """One PlaceBids call: per bid the outcome PlaceBid would give, in request order, across items."""
    first, second = await new_item(bidder), await new_item(bidder)
    bids = [
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="ann", amount=100, idempotency_key="a1"),
        bidder_pb2.PlaceBidRequest(item_id=second.id, bidder="bob", amount=300),
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="cat", amount=105),
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="ann", amount=100, idempotency_key="a1"),
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="ann", amount=999, idempotency_key="a1"),
        bidder_pb2.PlaceBidRequest(item_id="no-such-item", bidder="dan", amount=100),
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="dan", amount=0),
        bidder_pb2.PlaceBidRequest(item_id=first.id, bidder="eve", amount=130),
    ]
    response = await bidder.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
    kinds = [o.WhichOneof("outcome") for o in response.outcomes]
    assert len(kinds) == len(bids)
    outcomes = response.outcomes
    if bidder.strategy == "lua":  # WATCH runs a batch's bids as concurrent transactions: any order
        assert kinds == ["accepted", "accepted", "rejected", "accepted", "rejected", "rejected", "rejected",
                         "accepted"]  # fmt: skip
        assert outcomes[0].accepted == outcomes[3].accepted  # the idempotent replay
        assert outcomes[7].accepted.seq == 3
        assert outcomes[7].accepted.item.min_next_bid == 140
    codes = [o.rejected.code for o in outcomes if o.WhichOneof("outcome") == "rejected"]
    assert codes.count(grpc.StatusCode.NOT_FOUND.value[0]) == 1
    assert codes.count(grpc.StatusCode.INVALID_ARGUMENT.value[0]) >= 2  # amount 0 and the reused key
    assert outcomes[1].accepted.seq == 2
    info = error_details_pb2.ErrorInfo()
    assert outcomes[4].rejected.details[0].Unpack(info)
    assert info.reason == "IDEMPOTENCY_KEY_REUSED"
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=first.id))).item
    accepted_on_first = [o for o, b in zip(outcomes, bids, strict=True)
                         if b.item_id == first.id and o.WhichOneof("outcome") == "accepted"]  # fmt: skip
    assert got.bid_count == len({o.accepted.seq for o in accepted_on_first})
    assert got.current_price == max(o.accepted.amount for o in accepted_on_first)


async def test_concurrent_single_bids_are_group_committed_without_changing_outcomes(
    bidder: BidderHandle,
) -> None:
    """Many concurrent PlaceBid calls on one item: unique gap-free seqs, prices rising with seq."""
    item = await new_item(bidder)
    answers = await asyncio.gather(*(bid(bidder, item.id, f"p{i}", 100 + 10 * i) for i in range(200)))
    accepted = sorted((a for a in answers if isinstance(a, bidder_pb2.PlaceBidResponse)), key=lambda a: a.seq)
    assert [a.seq for a in accepted] == list(range(2, 2 + len(accepted)))
    assert all(b.amount >= a.amount + 10 for a, b in itertools.pairwise(accepted))
    for a in answers:
        if isinstance(a, grpc.aio.AioRpcError):
            assert reason_of(a)[1] == "BID_TOO_LOW"
    got = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert (got.seq, got.current_price) == (accepted[-1].seq, accepted[-1].amount)


async def test_place_bids_on_one_item_are_applied_in_request_order(bidder: BidderHandle) -> None:
    """Rising bids in one call all win, one after another, even when they are committed in pieces."""
    item = await new_item(bidder)
    for _ in range(5):
        start = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item.min_next_bid
        bids = [
            bidder_pb2.PlaceBidRequest(item_id=item.id, bidder=f"r{i}", amount=start + 10 * i)
            for i in range(6)
        ]
        response = await bidder.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
        assert [o.WhichOneof("outcome") for o in response.outcomes] == ["accepted"] * 6
        seqs = [o.accepted.seq for o in response.outcomes]
        assert seqs == sorted(seqs)
        assert seqs == list(range(seqs[0], seqs[0] + 6))
