"""The bidder's operator calls (`BidderAdminService.RestoreItem`): token-guarded, atomic, never backwards.

Restores of items with a lifecycle (soft close, reserve, extensions, the close) bring back exactly what
the bidder's own steps left, the partition's ends set included, with the closer running as in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc, item_pb2, restore_pb2, restore_pb2_grpc
from auction_contract.redis_layout import item_keys
from auction_contract.wire_time import ms_of, parse_ms
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings
from tests.conftest import scaled

TOKEN = "admin-token-for-the-test"
GOOD = (("authorization", f"Bearer {TOKEN}"),)


@dataclass
class Admin:
    bidder: bidder_pb2_grpc.BidderServiceAsyncStub
    admin: restore_pb2_grpc.BidderAdminServiceAsyncStub
    redis: Redis
    partitions: int
    # Whether the bidder was given an admin token: without one every admin call is PERMISSION_DENIED.
    token_on: bool


@pytest.fixture(scope="module", params=["with-token", "without-token"])
async def admin(request: pytest.FixtureRequest, redis_server: object) -> AsyncIterator[Admin]:
    url = getattr(redis_server, "url")  # noqa: B009 - the fixture's type lives in conftest
    token = TOKEN if request.param == "with-token" else None
    secret = SecretStr(token) if token is not None else None
    settings = BidderSettings(redis_url=url, port=0, admin_token=secret, shutdown_grace_seconds=0)
    server = BidderServer(settings)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    redis = Redis.from_url(url, decode_responses=True)
    try:
        yield Admin(
            bidder_pb2_grpc.BidderServiceStub(channel),
            restore_pb2_grpc.BidderAdminServiceStub(channel),
            redis,
            settings.partitions,
            token is not None,
        )
    finally:
        await channel.close(grace=None)
        await redis.aclose()
        await server.stop()


def _ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


async def _item_with_bids(admin: Admin, bids: int) -> tuple[str, restore_pb2.RestoreItemRequest]:
    """An item with `bids` accepted bids, and the restore request its archived rows would make."""
    ends = _ts(int((time.time() + 3600) * 1000))
    created = await admin.bidder.CreateItem(
        bidder_pb2.CreateItemRequest(
            title="Clock",
            description="wall",
            currency="EUR",
            starting_price=100,
            min_increment=5,
            ends_at=ends,
        )
    )
    item = created.item
    archived = restore_pb2.ArchivedItem(
        item_id=item.id, title=item.title, description=item.description, currency=item.currency,
        starting_price=item.starting_price, min_increment=item.min_increment, starts_at=item.starts_at,
        ends_at=item.ends_at, created_at=item.created_at,
    )  # fmt: skip
    recent = []
    for n in range(bids):
        reply = await admin.bidder.PlaceBid(
            bidder_pb2.PlaceBidRequest(item_id=item.id, bidder=f"b{n}", amount=100 + 5 * n)
        )
        recent.append(
            restore_pb2.ArchivedBid(
                seq=reply.seq,
                bidder=f"b{n}",
                amount=reply.amount,
                placed_at=reply.placed_at,
                min_next_bid=reply.item.min_next_bid,
            )
        )
    return item.id, restore_pb2.RestoreItemRequest(item=archived, bid_count=bids, recent_bids=recent)


async def _state(admin: Admin, item_id: str) -> tuple[Any, Any, Any]:
    keys = item_keys(item_id, admin.partitions)
    return (
        await admin.redis.hgetall(keys.item),
        await admin.redis.xrange(keys.events),
        await admin.redis.zscore(keys.index, item_id),
    )


async def _forget(admin: Admin, item_id: str) -> None:
    keys = item_keys(item_id, admin.partitions)
    await admin.redis.delete(keys.item, keys.events)
    await admin.redis.zrem(keys.index, item_id)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_restore_brings_back_exactly_what_redis_lost_and_never_goes_backwards(admin: Admin) -> None:
    """Rebuilt equals what the bidder wrote; a second restore leaves it alone; a newer history wins."""
    item_id, request = await _item_with_bids(admin, 3)
    before = await _state(admin, item_id)
    await _forget(admin, item_id)
    if not admin.token_on:
        assert (
            await _code(admin.admin.RestoreItem(request, metadata=GOOD)) == grpc.StatusCode.PERMISSION_DENIED
        )
        assert await _state(admin, item_id) == ({}, [], None)
        return
    reply = await admin.admin.RestoreItem(request, metadata=GOOD)
    assert (reply.result, reply.seq) == (restore_pb2.RESTORE_RESULT_REBUILT, 4)
    assert await _state(admin, item_id) == before
    again = await admin.admin.RestoreItem(request, metadata=GOOD)
    assert again.result == restore_pb2.RESTORE_RESULT_EXISTS
    # Bidding goes on at the next seq; a forced restore of the older archive is refused as "ahead".
    await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="late", amount=1000))
    newer = await _state(admin, item_id)
    request.force = True
    ahead = await admin.admin.RestoreItem(request, metadata=GOOD)
    assert ahead.result == restore_pb2.RESTORE_RESULT_AHEAD
    assert await _state(admin, item_id) == newer


async def test_restore_refuses_callers_without_the_token_and_bad_requests_and_writes_nothing(
    admin: Admin,
) -> None:
    item_id, request = await _item_with_bids(admin, 2)
    await _forget(admin, item_id)
    wrong = (("authorization", "Bearer not-the-token"),)
    off = None if admin.token_on else grpc.StatusCode.PERMISSION_DENIED
    unauthenticated = off or grpc.StatusCode.UNAUTHENTICATED
    assert await _code(admin.admin.RestoreItem(request)) == unauthenticated
    assert await _code(admin.admin.RestoreItem(request, metadata=wrong)) == unauthenticated
    shuffled = restore_pb2.RestoreItemRequest()
    shuffled.CopyFrom(request)
    shuffled.recent_bids[0].seq, shuffled.recent_bids[1].seq = 3, 2
    undercount = restore_pb2.RestoreItemRequest()
    undercount.CopyFrom(request)
    undercount.bid_count = 1
    bad_id = restore_pb2.RestoreItemRequest()
    bad_id.CopyFrom(request)
    bad_id.item.item_id = "no such/id"
    for bad, expected in (
        (shuffled, grpc.StatusCode.INVALID_ARGUMENT),
        (undercount, grpc.StatusCode.INVALID_ARGUMENT),
        (restore_pb2.RestoreItemRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (bad_id, grpc.StatusCode.NOT_FOUND),
    ):
        assert await _code(admin.admin.RestoreItem(bad, metadata=GOOD)) == (off or expected)
    assert await _state(admin, item_id) == ({}, [], None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _lifecycle_item(
    admin: Admin, ends_in_ms: int, window_s: int, extension_s: int, *, reserve: int | None = None
) -> str:
    request = bidder_pb2.CreateItemRequest(
        title="Lamp", description="brass", currency="EUR", starting_price=100, min_increment=5,
        ends_at=_ts(_now_ms() + ends_in_ms),
    )  # fmt: skip
    request.soft_close.window_seconds = window_s
    request.soft_close.extension_seconds = extension_s
    request.soft_close.max_ends_at.CopyFrom(_ts(_now_ms() + ends_in_ms + 3_600_000))
    if reserve is not None:
        request.reserve_price = reserve
    return (await admin.bidder.CreateItem(request)).item.id


async def _as_archived(admin: Admin, item_id: str) -> restore_pb2.RestoreItemRequest:
    """The restore request the archive would send, read back from what the bidder itself wrote: the
    created, bid, extended and closed events of the history, and the hidden reserve of the hash."""
    fields: Any = await admin.redis.hgetall(item_keys(item_id, admin.partitions).item)
    events = await _history(admin, item_id)
    created = events[0]
    item = restore_pb2.ArchivedItem(
        item_id=item_id, title=created["title"], description=created["description"],
        currency=created["currency"], starting_price=created["starting_price"],
        min_increment=created["min_increment"], starts_at=_ts(parse_ms(created["starts_at"])),
        ends_at=_ts(int(fields["et"])), created_at=_ts(parse_ms(created["created_at"])),
        created_ends_at=_ts(parse_ms(created["ends_at"])),
    )  # fmt: skip
    rule = created["soft_close"]
    item.soft_close.window_seconds = rule["window_seconds"]
    item.soft_close.extension_seconds = rule["extension_seconds"]
    item.soft_close.max_ends_at.CopyFrom(_ts(parse_ms(rule["max_ends_at"])))
    if "rp" in fields:
        item.reserve_price = int(fields["rp"])
    request = restore_pb2.RestoreItemRequest(item=item)
    item = request.item  # the request holds a copy
    for event in events[1:]:
        if event["type"] == "bid":
            request.bid_count += 1
            request.recent_bids.add(
                seq=event["seq"], bidder=event["bidder"], amount=event["amount"],
                placed_at=_ts(parse_ms(event["placed_at"])), min_next_bid=event["min_next_bid"],
            )  # fmt: skip
        elif event["type"] == "extended":
            request.recent_extensions.add(
                seq=event["seq"], ends_at=_ts(parse_ms(event["ends_at"])),
                previous_ends_at=_ts(parse_ms(event["previous_ends_at"])),
            )  # fmt: skip
        else:
            assert event["type"] == "closed", event
            outcome = {"sold": item_pb2.AUCTION_OUTCOME_SOLD, "no_sale": item_pb2.AUCTION_OUTCOME_NO_SALE}
            item.result.outcome = outcome[event["outcome"]]
            item.result.closed_at.CopyFrom(_ts(parse_ms(event["closed_at"])))
            if event["winner"] is not None:
                item.result.winner = event["winner"]
                item.result.final_price = event["final_price"]
            request.closed.seq = event["seq"]
            request.closed.bid_count = event["bid_count"]
    return request


async def _history(admin: Admin, item_id: str) -> list[dict[str, Any]]:
    entries: Any = await admin.redis.xrange(item_keys(item_id, admin.partitions).events)
    return [orjson.loads(fields["e"]) for _, fields in entries]


async def _full_state(admin: Admin, item_id: str) -> tuple[Any, Any, Any, Any]:
    keys = item_keys(item_id, admin.partitions)
    return (*await _state(admin, item_id), await admin.redis.zscore(keys.ends, item_id))


async def _forget_all(admin: Admin, item_id: str) -> None:
    await _forget(admin, item_id)
    await admin.redis.zrem(item_keys(item_id, admin.partitions).ends, item_id)


async def _closed(admin: Admin, item_id: str, within: float) -> None:
    keys = item_keys(item_id, admin.partitions)
    deadline = time.monotonic() + scaled(within)
    while not await admin.redis.hexists(keys.item, "out"):
        assert time.monotonic() < deadline, "the closer did not close the item"
        await asyncio.sleep(0.05)


async def test_restore_of_a_closed_extended_item_brings_back_its_result_and_keeps_it_closed(
    admin: Admin,
) -> None:
    """A sold item (reserve met) that was extended, then closed by the closer, and an unsold one (reserve
    not met):
    restored, the hash (rule, reserve, effective end, result), the history (created, bids, extended,
    closed) and the index are the bidder's own, the item is in no ends set, seq is the close's, and a
    bid is refused as closed: the closer never closes it twice."""
    sold = await _lifecycle_item(admin, 1500, window_s=10, extension_s=2, reserve=100)  # met
    unsold = await _lifecycle_item(admin, 1000, window_s=10, extension_s=2, reserve=10_000)
    await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=sold, bidder="ann", amount=100))
    await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=unsold, bidder="ann", amount=100))
    await _closed(admin, sold, 10)
    await _closed(admin, unsold, 10)
    for item_id, outcome, seq in ((sold, "sold", 4), (unsold, "no_sale", 4)):
        before = await _full_state(admin, item_id)
        assert before[0]["out"] == outcome
        assert before[3] is None  # the close took it out of the ends set
        assert [orjson.loads(e["e"])["type"] for _, e in before[1]] == [
            "created",
            "bid",
            "extended",
            "closed",
        ]
        request = await _as_archived(admin, item_id)
        await _forget_all(admin, item_id)
        if not admin.token_on:
            assert (
                await _code(admin.admin.RestoreItem(request, metadata=GOOD))
                == grpc.StatusCode.PERMISSION_DENIED
            )
            return
        reply = await admin.admin.RestoreItem(request, metadata=GOOD)
        assert (reply.result, reply.seq) == (restore_pb2.RESTORE_RESULT_REBUILT, seq)
        assert await _full_state(admin, item_id) == before
        got = (await admin.bidder.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))).item
        assert got.status == item_pb2.ITEM_STATUS_CLOSED
        assert got.seq == seq
        assert got.result.outcome == request.item.result.outcome
        refused = await _code(
            admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="bo", amount=50_000))
        )
        assert refused == grpc.StatusCode.FAILED_PRECONDITION
    await asyncio.sleep(0.5)  # a few closer ticks: still closed once
    for item_id in (sold, unsold):
        assert [e["type"] for e in await _history(admin, item_id)].count("closed") == 1


async def test_restore_of_an_extended_open_item_puts_it_back_in_the_ends_set_at_its_effective_end(
    admin: Admin,
) -> None:
    """An open item extended by a late bid: restored, `et` and the ends set score are the moved end,
    seq is the extension's, and bidding goes on with the same soft close rule (the next late bid extends
    again, at the next seqs)."""
    item_id = await _lifecycle_item(admin, 20_000, window_s=300, extension_s=120)
    await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="ann", amount=100))
    before = await _full_state(admin, item_id)
    assert before[3] == float(before[0]["et"])
    assert int(before[0]["et"]) > int(before[0]["ct"]) + 100_000  # moved from 20 s to 120 s after the bid
    request = await _as_archived(admin, item_id)
    await _forget_all(admin, item_id)
    if not admin.token_on:
        assert (
            await _code(admin.admin.RestoreItem(request, metadata=GOOD)) == grpc.StatusCode.PERMISSION_DENIED
        )
        return
    reply = await admin.admin.RestoreItem(request, metadata=GOOD)
    assert (reply.result, reply.seq) == (restore_pb2.RESTORE_RESULT_REBUILT, 3)
    assert await _full_state(admin, item_id) == before
    await asyncio.sleep(0.1)
    late = await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="bo", amount=105))
    assert late.seq == 4
    events = await _history(admin, item_id)
    assert [(e["type"], e["seq"]) for e in events[-2:]] == [("bid", 4), ("extended", 5)]


async def test_a_restored_open_item_past_its_end_is_closed_by_the_closer_once(admin: Admin) -> None:
    """Redis lost an item after its end but before its close (the archive has no result): the restore
    puts it in the ends set at its end, so the closer closes it, once, with the next seq."""
    item_id, request = await _item_with_bids(admin, 2)
    await _forget_all(admin, item_id)
    request.item.ends_at.CopyFrom(_ts(_now_ms() - 1000))
    request.item.reserve_price = 100  # met by the bids
    if not admin.token_on:
        assert (
            await _code(admin.admin.RestoreItem(request, metadata=GOOD)) == grpc.StatusCode.PERMISSION_DENIED
        )
        return
    reply = await admin.admin.RestoreItem(request, metadata=GOOD)
    assert (reply.result, reply.seq) == (restore_pb2.RESTORE_RESULT_REBUILT, 3)
    await _closed(admin, item_id, 10)
    await asyncio.sleep(0.5)  # a few more closer ticks
    events = await _history(admin, item_id)
    assert [(e["type"], e["seq"]) for e in events] == [("created", 1), ("bid", 2), ("bid", 3), ("closed", 4)]
    assert (events[-1]["outcome"], events[-1]["winner"], events[-1]["final_price"]) == ("sold", "b1", 105)
    assert (await _full_state(admin, item_id))[3] is None


async def test_restore_refuses_lifecycle_rows_that_cannot_be_and_writes_nothing(admin: Admin) -> None:
    """A result without its close (or the reverse), a close that is not the last event, an extension of
    a hard-end item, an end past the cap or before the created end, a reserve below the starting price,
    a sale without a winner, bid kinds that cannot be: INVALID_ARGUMENT, and Redis is untouched."""
    item_id = await _lifecycle_item(admin, 20_000, window_s=300, extension_s=120)
    await admin.bidder.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder="ann", amount=100))
    good = await _as_archived(admin, item_id)
    await _forget_all(admin, item_id)

    def spoiled(change: Any) -> restore_pb2.RestoreItemRequest:
        bad = restore_pb2.RestoreItemRequest()
        bad.CopyFrom(good)
        change(bad)
        return bad

    def closed_at(
        seq: int, outcome: item_pb2.AuctionOutcome.ValueType = item_pb2.AUCTION_OUTCOME_NO_SALE
    ) -> Any:
        def change(r: restore_pb2.RestoreItemRequest) -> None:
            r.item.result.outcome = outcome
            r.item.result.closed_at.CopyFrom(r.item.ends_at)
            r.closed.seq = seq

        return change

    def nobody_leads(r: restore_pb2.RestoreItemRequest) -> None:
        r.ClearField("recent_bids")
        r.leader_max = 500

    cases = [
        closed_at(3),  # the close is not after the extension (seq 3)
        closed_at(4, item_pb2.AUCTION_OUTCOME_SOLD),  # a sale without winner or price
        lambda r: r.item.result.closed_at.CopyFrom(r.item.ends_at),  # a result without its close
        lambda r: setattr(r.closed, "seq", 4),  # a close without a result
        lambda r: r.item.ClearField("soft_close"),  # extensions of a hard-end item
        lambda r: r.item.soft_close.max_ends_at.CopyFrom(_ts(ms_of(r.item.ends_at) - 1)),  # past the cap
        lambda r: r.item.created_ends_at.CopyFrom(_ts(ms_of(r.item.ends_at) + 1)),  # the end moved back
        lambda r: setattr(r.item, "reserve_price", 99),  # below the starting price
        lambda r: setattr(r.recent_extensions[0], "seq", 2),  # the bid's seq
        # Bid kinds: a hidden maximum not above the price or with nobody leading, a ladder that does not
        # start at 0, a buy-now price not above the starting price.
        lambda r: setattr(r, "leader_max", 100),
        nobody_leads,
        lambda r: r.item.increments.add(from_price=5, increment=5),
        lambda r: setattr(r.item, "buy_now_price", 100),
    ]
    want = grpc.StatusCode.INVALID_ARGUMENT if admin.token_on else grpc.StatusCode.PERMISSION_DENIED
    for change in cases:
        assert await _code(admin.admin.RestoreItem(spoiled(change), metadata=GOOD)) == want
    assert await _full_state(admin, item_id) == ({}, [], None, None)
