"""Bid kinds at the real bidder (both write strategies, real Redis): proxy bids, the ladder, buy-now.

eBay's worked examples as plain tests, each also checked against the reference model
(`auction_contract.bid_rules`); buy-now's atomic close with concurrent buyers; refused input changes
nothing; a maximum never shows in an event, an item or an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import orjson
import pytest

from auction.v1 import bidder_pb2, item_pb2
from auction_contract.bid_rules import Book, place
from auction_contract.redis_layout import ItemField, item_keys
from tests.bidder_fixtures import BidderHandle, bidder
from tests.conftest import scaled
from tests.test_bidder_grpc import reason_of, ts

__all__ = ["bidder"]


async def lot(
    h: BidderHandle,
    *,
    starting_price: int = 100,
    min_increment: int = 10,
    increments: tuple[tuple[int, int], ...] = (),
    reserve: int | None = None,
    buy_now: int | None = None,
    ends_in: float = 3600,
    window_s: int | None = None,
) -> item_pb2.Item:
    request = bidder_pb2.CreateItemRequest(
        title="Lamp", currency="USD", starting_price=starting_price, min_increment=min_increment,
        ends_at=ts(ends_in),
        increments=[item_pb2.IncrementStep(from_price=a, increment=b) for a, b in increments],
    )  # fmt: skip
    if reserve is not None:
        request.reserve_price = reserve
    if buy_now is not None:
        request.buy_now_price = buy_now
    if window_s is not None:
        request.soft_close.window_seconds = window_s
        request.soft_close.extension_seconds = window_s
    return (await h.stub.CreateItem(request)).item


async def offer(
    h: BidderHandle, item_id: str, who: str, amount: int = 0, max_amount: int | None = None, key: str = ""
) -> bidder_pb2.PlaceBidResponse | grpc.aio.AioRpcError:
    request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=who, amount=amount, idempotency_key=key)
    if max_amount is not None:
        request.max_amount = max_amount
    try:
        return await h.stub.PlaceBid(request)
    except grpc.aio.AioRpcError as exc:
        return exc


async def accepted(
    h: BidderHandle, item_id: str, who: str, amount: int = 0, max_amount: int | None = None
) -> bidder_pb2.PlaceBidResponse:
    answer = await offer(h, item_id, who, amount, max_amount)
    assert isinstance(answer, bidder_pb2.PlaceBidResponse), answer
    return answer


async def get(h: BidderHandle, item_id: str) -> item_pb2.Item:
    return (await h.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))).item


async def events(h: BidderHandle, item_id: str) -> list[dict[str, Any]]:
    keys = item_keys(item_id, h.server.settings.partitions)
    entries: Any = await h.redis.xrange(keys.events)
    return [orjson.loads(fields["e"]) for _, fields in entries]


def model_after(bids: list[tuple[str, int | None, int | None]], *, starting_price: int = 100) -> Book:
    book = Book(starting_price, ((0, 10),))
    for who, amount, max_amount in bids:
        book = place(book, who, amount, max_amount).book
    return book


async def test_a_lone_maximum_leads_at_the_starting_price(bidder: BidderHandle) -> None:
    """eBay: the first bidder's maximum of 500 bids the starting price for them (a proxy bid)."""
    item = await lot(bidder)
    answer = await accepted(bidder, item.id, "ann", max_amount=500)
    assert (answer.leading, answer.amount, answer.item.current_price) == (True, 100, 100)
    assert (answer.item.highest_bidder, answer.item.min_next_bid) == ("ann", 110)
    last = (await events(bidder, item.id))[-1]
    assert (last["bidder"], last["amount"], last["proxy"]) == ("ann", 100, True)
    assert model_after([("ann", None, 500)]).price == 100


async def test_a_lower_maximum_moves_the_price_to_it_plus_one_increment(bidder: BidderHandle) -> None:
    """eBay: ann's 500 against bob's 300: ann leads at 310; bob's answer says he does not lead."""
    item = await lot(bidder)
    await accepted(bidder, item.id, "ann", max_amount=500)
    answer = await accepted(bidder, item.id, "bob", max_amount=300)
    assert answer.leading is False
    assert (answer.item.current_price, answer.item.highest_bidder) == (310, "ann")
    last = (await events(bidder, item.id))[-1]
    assert (last["bidder"], last["amount"], last.get("proxy")) == ("ann", 310, True)
    assert model_after([("ann", None, 500), ("bob", None, 300)]).price == 310


async def test_equal_maximums_the_earlier_leads_at_that_amount(bidder: BidderHandle) -> None:
    """eBay: two maximums of 400: the first leads, at 400 (capped at their own maximum)."""
    item = await lot(bidder)
    await accepted(bidder, item.id, "ann", max_amount=400)
    answer = await accepted(bidder, item.id, "bob", max_amount=400)
    assert (answer.leading, answer.item.current_price, answer.item.highest_bidder) == (False, 400, "ann")
    assert model_after([("ann", None, 400), ("bob", None, 400)]).leader == "ann"


async def test_outbid_by_less_than_an_increment_when_a_maximum_caps_it(bidder: BidderHandle) -> None:
    """eBay: ann's 405 beats bob's 400 at 405, less than a full increment above bob."""
    item = await lot(bidder)
    await accepted(bidder, item.id, "bob", max_amount=400)
    answer = await accepted(bidder, item.id, "ann", max_amount=405)
    assert (answer.leading, answer.item.current_price, answer.amount) == (True, 405, 405)
    assert model_after([("bob", None, 400), ("ann", None, 405)]).price == 405


async def test_a_plain_bid_is_defended_by_the_leaders_maximum(bidder: BidderHandle) -> None:
    """A plain bid of 200 against a maximum of 500: the plain bid is an event, then ann's proxy at 210."""
    item = await lot(bidder)
    await accepted(bidder, item.id, "ann", max_amount=500)
    answer = await accepted(bidder, item.id, "bob", 200)
    assert (answer.amount, answer.leading, answer.item.current_price) == (200, False, 210)
    tail = (await events(bidder, item.id))[-2:]
    assert [(e["bidder"], e["amount"], e.get("proxy", False)) for e in tail] == [
        ("bob", 200, False), ("ann", 210, True),
    ]  # fmt: skip
    assert answer.seq == tail[0]["seq"]


async def test_the_leader_raises_their_maximum_without_moving_the_price(bidder: BidderHandle) -> None:
    """A raise is accepted (leading) with no event; not raising above one's own maximum is too low."""
    item = await lot(bidder)
    await accepted(bidder, item.id, "ann", max_amount=300)
    await accepted(bidder, item.id, "bob", 150)
    before = await get(bidder, item.id)
    raised = await accepted(bidder, item.id, "ann", max_amount=900)
    assert (raised.leading, raised.item.current_price, raised.item.seq) == (True, 160, before.seq)
    again = await offer(bidder, item.id, "ann", max_amount=900)
    assert isinstance(again, grpc.aio.AioRpcError)
    assert reason_of(again) == (grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW", {"min_next_bid": "901"})
    # The raise holds: bob's 800 is beaten by ann's 900 at 810.
    assert (await accepted(bidder, item.id, "bob", max_amount=800)).item.current_price == 810


async def test_the_price_rises_to_the_reserve_once_a_maximum_covers_it(bidder: BidderHandle) -> None:
    item = await lot(bidder, reserve=1000)
    low = await accepted(bidder, item.id, "ann", max_amount=700)
    assert (low.item.current_price, low.item.reserve_met) == (100, False)
    raised = await accepted(bidder, item.id, "ann", max_amount=1500)
    assert (raised.item.current_price, raised.item.reserve_met) == (1000, True)


async def test_the_ladder_sets_min_next_bid_and_proxy_steps(bidder: BidderHandle) -> None:
    """Increments 10 below 1000, 100 from 1000: min_next_bid and the proxy's step follow the price."""
    item = await lot(bidder, min_increment=0, increments=((0, 10), (1000, 100)))
    assert [(s.from_price, s.increment) for s in item.increments] == [(0, 10), (1000, 100)]
    assert item.min_increment == 10
    first = await accepted(bidder, item.id, "ann", 1000)
    assert first.item.min_next_bid == 1100
    refused = await offer(bidder, item.id, "bob", 1050)
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert reason_of(refused)[2] == {"min_next_bid": "1100"}
    await accepted(bidder, item.id, "bob", max_amount=5000)
    answer = await accepted(bidder, item.id, "cy", max_amount=2000)
    assert (answer.item.current_price, answer.item.min_next_bid) == (2100, 2200)


async def test_a_maximum_never_shows_in_events_items_or_errors(bidder: BidderHandle) -> None:
    item = await lot(bidder)
    secret = 987_654
    await accepted(bidder, item.id, "ann", max_amount=secret)
    await accepted(bidder, item.id, "bob", max_amount=5000)
    refused = await offer(bidder, item.id, "bob", 200)
    assert isinstance(refused, grpc.aio.AioRpcError)
    shown = [
        str(secret) in (refused.details() or ""),
        str(secret) in str(reason_of(refused)),
        str(secret).encode() in (await get(bidder, item.id)).SerializeToString(),
        any(str(secret) in orjson.dumps(e).decode() for e in await events(bidder, item.id)),
    ]
    assert shown == [False, False, False, False]
    keys = item_keys(item.id, bidder.server.settings.partitions)
    outbox: Any = await bidder.redis.xrange(keys.outbox)
    assert not any(str(secret) in fields["e"] for _, fields in outbox)
    assert await bidder.redis.hget(keys.item, ItemField.LEADER_MAX.value) == str(secret)


async def test_a_proxy_bid_inside_the_window_extends_the_end(bidder: BidderHandle) -> None:
    item = await lot(bidder, ends_in=3, window_s=10)
    await accepted(bidder, item.id, "ann", max_amount=500)
    answer = await accepted(bidder, item.id, "bob", max_amount=300)
    kinds = [e["type"] for e in await events(bidder, item.id)]
    assert kinds == ["created", "bid", "extended", "bid", "extended"]
    assert answer.item.seq == 5


async def test_buy_now_sells_at_once_to_exactly_one_of_many_buyers(bidder: BidderHandle) -> None:
    item = await lot(bidder, buy_now=5000, reserve=4000)
    assert item.buy_now_price == 5000

    async def buy(who: str) -> bidder_pb2.PlaceBidResponse | grpc.aio.AioRpcError:
        try:
            return await bidder.stub.BuyNow(bidder_pb2.BuyNowRequest(item_id=item.id, bidder=who))
        except grpc.aio.AioRpcError as exc:
            return exc

    answers = await asyncio.gather(*(buy(f"b{i}") for i in range(20)))
    won = [a for a in answers if isinstance(a, bidder_pb2.PlaceBidResponse)]
    assert len(won) == 1
    assert {reason_of(a)[1] for a in answers if isinstance(a, grpc.aio.AioRpcError)} == {"AUCTION_CLOSED"}
    winner = won[0]
    assert (winner.amount, winner.leading, winner.item.status) == (5000, True, item_pb2.ITEM_STATUS_CLOSED)
    assert (winner.item.result.winner, winner.item.result.final_price) == (winner.item.highest_bidder, 5000)
    history = await events(bidder, item.id)
    assert [(e["type"], e["seq"]) for e in history] == [("created", 1), ("bid", 2), ("closed", 3)]
    late = await offer(bidder, item.id, "zed", 9000)
    assert isinstance(late, grpc.aio.AioRpcError)
    assert reason_of(late)[1] == "AUCTION_CLOSED"
    assert len(await events(bidder, item.id)) == 3


async def test_a_retried_buy_with_its_key_hears_the_first_answer(bidder: BidderHandle) -> None:
    """The same buyer and key: the winning answer again (not "closed"); the key used for a bid: reused."""
    item = await lot(bidder, buy_now=700)
    request = bidder_pb2.BuyNowRequest(item_id=item.id, bidder="ann", idempotency_key="buy-1")
    answers = await asyncio.gather(*(bidder.stub.BuyNow(request) for _ in range(5)))
    assert len({a.SerializeToString(deterministic=True) for a in answers}) == 1
    assert (answers[0].seq, answers[0].amount) == (2, 700)
    await accepted(bidder, (other := await lot(bidder, buy_now=700)).id, "ann", 100)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bidder.stub.BuyNow(
            bidder_pb2.BuyNowRequest(item_id=other.id, bidder="ann", idempotency_key="k")
        )
    assert reason_of(caught.value)[1] == "BUY_NOW_UNAVAILABLE"
    reused = await offer(bidder, other.id, "ann", 500, key="k")
    assert isinstance(reused, grpc.aio.AioRpcError)
    assert reason_of(reused)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "IDEMPOTENCY_KEY_REUSED")
    assert len(await events(bidder, item.id)) == 3


async def test_buy_now_after_the_first_bid_is_unavailable(bidder: BidderHandle) -> None:
    item = await lot(bidder, buy_now=5000)
    plain = await lot(bidder)
    await accepted(bidder, item.id, "ann", max_amount=300)
    for target in (item.id, plain.id):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await bidder.stub.BuyNow(bidder_pb2.BuyNowRequest(item_id=target, bidder="bob"))
        assert reason_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BUY_NOW_UNAVAILABLE")
    assert (await get(bidder, item.id)).seq == 2


async def test_the_closer_sells_to_the_proxy_leader_at_the_resolved_price(bidder: BidderHandle) -> None:
    item = await lot(bidder, ends_in=0.8)
    await accepted(bidder, item.id, "ann", max_amount=900)
    await accepted(bidder, item.id, "bob", max_amount=400)
    for _ in range(100):
        closed = await get(bidder, item.id)
        if closed.HasField("result"):
            break
        await asyncio.sleep(scaled(0.05))
    assert (closed.result.winner, closed.result.final_price) == ("ann", 410)


@pytest.mark.parametrize(
    ("amount", "max_amount"),
    [(300, 200), (0, 0), (0, -5), (0, 10**15 + 1), (-1, 500)],
)
async def test_bad_maximums_are_invalid_argument_and_change_nothing(
    bidder: BidderHandle, amount: int, max_amount: int
) -> None:
    item = await lot(bidder)
    answer = await offer(bidder, item.id, "ann", amount, max_amount)
    assert isinstance(answer, grpc.aio.AioRpcError)
    assert answer.code() == grpc.StatusCode.INVALID_ARGUMENT
    if max_amount > 100:  # the message never repeats a maximum
        assert str(max_amount) not in (answer.details() or "")
    assert (await get(bidder, item.id)).seq == 1


async def test_a_maximum_below_min_next_bid_is_too_low_and_changes_nothing(bidder: BidderHandle) -> None:
    item = await lot(bidder)
    answer = await offer(bidder, item.id, "ann", max_amount=99)
    assert isinstance(answer, grpc.aio.AioRpcError)
    assert reason_of(answer) == (grpc.StatusCode.FAILED_PRECONDITION, "BID_TOO_LOW", {"min_next_bid": "100"})
    assert (await get(bidder, item.id)).seq == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"increments": ((10, 5),)}, "from = 0"),
        ({"increments": ((0, 5), (100, 10), (100, 20))}, "strictly rising"),
        ({"increments": ((0, 5), (50, 0))}, "increment"),
        ({"increments": ((0, 5),), "min_increment": 7}, "min_increment"),
        ({"buy_now": 100}, "buy_now_price"),
        ({"buy_now": 500, "reserve": 600}, "buy_now_price"),
    ],
)
async def test_bad_bid_kinds_at_creation_are_invalid_argument(
    bidder: BidderHandle, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lot(bidder, **change)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
