"""Defects a black-box attack found at the bidder, and a fuzz of its requests (both write strategies).

- Past 2^53 the Lua comparison ran in floating point, so an equal bid was accepted and the leader
  flipped; amounts are now bounded to 10^15, where every sum stays exact.
- Items with times no reader can handle (year 481, year 10000) or control characters in their text
  were accepted and then poisoned the archive; now they are INVALID_ARGUMENT (never INTERNAL).
- The fuzz: any request the protobuf messages can carry gets a status a caller can act on (never
  INTERNAL or UNKNOWN, never a hang), and a refused request changes nothing in Redis.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auction.v1 import bidder_pb2, item_pb2
from auction_contract.redis_layout import index_key
from auction_contract.rules import EARLIEST_TIME_MS, LATEST_TIME_MS, MAX_AMOUNT
from tests.bidder_fixtures import BidderHandle, bidder
from tests.test_bidder_grpc import bid, reason_of, ts

__all__ = ["bidder"]

ACTIONABLE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
CALL_LIMIT_SECONDS = 10.0


async def item_priced(h: BidderHandle, starting_price: int, min_increment: int) -> item_pb2.Item:
    request = bidder_pb2.CreateItemRequest(
        title="Bullion", currency="USD", starting_price=starting_price, min_increment=min_increment,
        ends_at=ts(3600),
    )  # fmt: skip
    return (await h.stub.CreateItem(request)).item


async def test_no_bid_equal_to_the_last_is_accepted_at_the_money_bound(bidder: BidderHandle) -> None:
    """At the largest allowed amounts, every accepted bid is above the previous one, exactly."""
    item = await item_priced(bidder, MAX_AMOUNT - 2, 1)
    first = await bid(bidder, item.id, "ann", MAX_AMOUNT - 2)
    second = await bid(bidder, item.id, "bob", MAX_AMOUNT - 1)
    assert isinstance(first, bidder_pb2.PlaceBidResponse)
    assert isinstance(second, bidder_pb2.PlaceBidResponse)
    assert second.item.min_next_bid == MAX_AMOUNT
    for bidder_id in ("ann", "bob", "ann"):
        again = await bid(bidder, item.id, bidder_id, MAX_AMOUNT - 1)
        assert isinstance(again, grpc.aio.AioRpcError)
        assert reason_of(again)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW")
    last = await bid(bidder, item.id, "ann", MAX_AMOUNT)
    assert isinstance(last, bidder_pb2.PlaceBidResponse)
    assert (last.item.current_price, last.item.highest_bidder) == (MAX_AMOUNT, "ann")
    # Nothing above the bound is taken: the next minimum is out of reach, the item stays with ann.
    beyond = await bid(bidder, item.id, "bob", MAX_AMOUNT + 1)
    assert isinstance(beyond, grpc.aio.AioRpcError)
    assert beyond.code() == grpc.StatusCode.INVALID_ARGUMENT
    equal = await bid(bidder, item.id, "bob", MAX_AMOUNT)
    assert isinstance(equal, grpc.aio.AioRpcError)
    assert reason_of(equal)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW")
    final = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert (final.current_price, final.highest_bidder, final.bid_count) == (MAX_AMOUNT, "ann", 3)


async def test_the_attacks_reproduction_is_refused(bidder: BidderHandle) -> None:
    """The reported case: starting_price 2^53 - 1 with increment 1 is beyond the bound now."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await item_priced(bidder, 9007199254740991, 1)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (None, Timestamp(seconds=253402300810)),  # past year 9999: was INTERNAL
        (Timestamp(seconds=-47_170_000_000), None),  # 0481-01-08: the relay could not parse it
        (Timestamp(seconds=EARLIEST_TIME_MS // 1000 - 1), None),
        (None, Timestamp(seconds=LATEST_TIME_MS // 1000)),
        (None, Timestamp(seconds=-(2**62))),
    ],
)
async def test_times_outside_the_window_are_invalid_argument(
    bidder: BidderHandle, starts: Timestamp | None, ends: Timestamp | None
) -> None:
    request = bidder_pb2.CreateItemRequest(
        title="Vase", currency="USD", starting_price=1, min_increment=1, ends_at=ends or ts(3600)
    )
    if starts is not None:
        request.starts_at.CopyFrom(starts)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bidder.stub.CreateItem(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "2000-01-01" in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("title", "description", "accepted"),
    [
        ("Vase\x00", "", False),
        ("Vase", "A\x00vase", False),
        ("Vase\nDuo", "", False),
        ("Vase", "bell\x07", False),
        ("Vase", "C1\x85control", False),
        ("Vase", "Two lines\r\n\tand a tab", True),
        ("Vase \u00e9\u4e2d\U0001f3fa", "Unicode is fine", True),
    ],
)
async def test_control_characters_in_text_are_refused(
    bidder: BidderHandle, title: str, description: str, accepted: bool
) -> None:
    request = bidder_pb2.CreateItemRequest(
        title=title, description=description, currency="USD", starting_price=1, min_increment=1,
        ends_at=ts(3600),
    )  # fmt: skip
    if not accepted:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bidder.stub.CreateItem(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "control characters" in (caught.value.details() or "")
        return
    item = (await bidder.stub.CreateItem(request)).item
    assert (item.title, item.description) == (title, description)


# The fuzz. Values around every boundary the bidder checks, plus anything at all.
amounts = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, MAX_AMOUNT - 1, MAX_AMOUNT, MAX_AMOUNT + 1, 2**53, 2**53 + 1, -1]),
)
texts = st.one_of(st.text(max_size=300), st.sampled_from(["", " ", "x" * 201, "a\x00b", "\x7f", "\t"]))
ids = st.one_of(st.text(max_size=80), st.sampled_from(["", "a" * 65, "../x", "ok-id", "no.dot"]))
stamps = st.builds(
    Timestamp,
    seconds=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=EARLIEST_TIME_MS // 1000 - 2, max_value=LATEST_TIME_MS // 1000 + 2),
        # Far ends of what a Timestamp can say: year 10000, 2^40 s, int64's limits.
        st.sampled_from([253402300800, 253402300810, 2**40, 2**62, 2**63 - 1, -(2**63)]),
    ),
    nanos=st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.just(0)),
)
currencies = st.one_of(st.sampled_from(["USD", "usd", "EURO", ""]), st.text(max_size=4))
FUZZED = {
    "title": texts,
    "description": texts,
    "currency": currencies,
    "starting_price": amounts,
    "min_increment": amounts,
    "starts_at": stamps,
    "ends_at": st.one_of(st.none(), stamps),
}


@st.composite
def create_requests(draw: st.DrawFn) -> bidder_pb2.CreateItemRequest:
    """A valid item with zero to three of its fields replaced by anything: random values in every
    field would almost never get past the first check, so the later ones would go untested."""
    fields: dict[str, object] = {
        "title": "Vase", "description": "", "currency": "USD", "starting_price": 100, "min_increment": 10,
        "starts_at": None, "ends_at": ts(3600),
    }  # fmt: skip
    for name in draw(st.sets(st.sampled_from(sorted(FUZZED)), max_size=3)):
        fields[name] = draw(FUZZED[name])
    return bidder_pb2.CreateItemRequest(**{k: v for k, v in fields.items() if v is not None})  # type: ignore[arg-type]


async def _call(call: object) -> grpc.StatusCode:
    """OK or the refusal's code; fails the test on a hang."""
    try:
        await asyncio.wait_for(call, timeout=CALL_LIMIT_SECONDS)  # type: ignore[arg-type]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def _index_size(h: BidderHandle) -> int:
    """Items in every partition's index: a refused CreateItem must not add one."""
    partitions = h.server.settings.partitions
    return sum([await h.redis.zcard(index_key(p)) for p in range(partitions)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=create_requests())
async def test_fuzzed_create_item_gets_an_actionable_answer(
    bidder: BidderHandle, request: bidder_pb2.CreateItemRequest
) -> None:
    before = await _index_size(bidder)
    code = await _call(bidder.stub.CreateItem(request))
    assert code in ACTIONABLE | {grpc.StatusCode.OK}, (code, request)
    assert await _index_size(bidder) == before + (1 if code == grpc.StatusCode.OK else 0)


@pytest.fixture(scope="module")
async def fuzz_item(bidder: BidderHandle) -> item_pb2.Item:
    return await item_priced(bidder, 100, 10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    use_item=st.booleans(),
    item_id=ids,
    bidder_id=st.one_of(st.sampled_from(["ann", "bob"]), st.text(max_size=70)),
    amount=amounts,
    key=st.one_of(st.just(""), st.text(max_size=140)),
)
async def test_fuzzed_place_bid_is_actionable_and_a_refusal_changes_nothing(
    bidder: BidderHandle,
    fuzz_item: item_pb2.Item,
    use_item: bool,
    item_id: str,
    bidder_id: str,
    amount: int,
    key: str,
) -> None:
    target = fuzz_item.id if use_item else item_id
    read = bidder_pb2.GetItemRequest(item_id=fuzz_item.id)
    before = (await bidder.stub.GetItem(read)).item
    request = bidder_pb2.PlaceBidRequest(item_id=target, bidder=bidder_id, amount=amount, idempotency_key=key)
    code = await _call(bidder.stub.PlaceBid(request))
    assert code in ACTIONABLE | {grpc.StatusCode.OK}, (code, request)
    after = (await bidder.stub.GetItem(read)).item
    if code != grpc.StatusCode.OK or target != fuzz_item.id:
        assert after.seq == before.seq
        assert after.current_price == before.current_price
    batch = bidder_pb2.PlaceBidsRequest(bids=[request, request])
    assert await _call(bidder.stub.PlaceBids(batch)) in ACTIONABLE | {grpc.StatusCode.OK}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    item_id=ids,
    status=st.integers(min_value=-5, max_value=10),
    limit=st.integers(-(2**31), 2**31 - 1),
    cursor=st.text(max_size=100),
)
async def test_fuzzed_reads_are_actionable(
    bidder: BidderHandle, item_id: str, status: int, limit: int, cursor: str
) -> None:
    assert await _call(bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))) in ACTIONABLE | {
        grpc.StatusCode.OK
    }
    listing = bidder_pb2.ListItemsRequest(status=status, limit=limit, cursor=cursor)  # type: ignore[arg-type]
    assert await _call(bidder.stub.ListItems(listing)) in ACTIONABLE | {grpc.StatusCode.OK}
