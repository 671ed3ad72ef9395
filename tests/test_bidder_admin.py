"""The bidder's operator calls (`BidderAdminService.RestoreItem`): token-guarded, atomic, never backwards."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc, restore_pb2, restore_pb2_grpc
from auction_contract.redis_layout import item_keys
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings

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
