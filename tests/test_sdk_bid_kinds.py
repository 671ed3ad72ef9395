"""Bid kinds in the SDK (against the real edge and bidder) and in what `auction` prints for them.

`place_bid(item, amount=..., max_amount=...)` with `leading` in the result (today's positional amount
still works), `buy_now(item)` with its retry-safe key, `create_item(increments=..., buy_now_price=...)`,
the typed errors (`BuyNowUnavailable`), the sync client's wrappers; and `describe_bid` /
`describe_item` for proxy bids, ladders and buy-now.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auction import (
    AsyncAuctionClient,
    AuctionClient,
    AuctionClosed,
    AuctionNotOpen,
    BidTooLow,
    BuyNowUnavailable,
    IdempotencyKeyReused,
    ValidationFailed,
)
from auction.cli import describe_bid, describe_item
from auction.models import BidResult, Item, SoftCloseRequest
from tests.stack_fixtures import RestStack, lua_stack
from tests.test_sdk_lifecycle import item as sample_item
from tests.test_sdk_rest import QUICK, DropFirstResponse

__all__ = ["lua_stack"]

FAR = datetime(2099, 1, 1, tzinfo=UTC)
LADDER = [(0, 100), (5000, 500)]


async def new_item(stack: RestStack, **kw: Any) -> Item:
    async with AsyncAuctionClient(stack.base_url, stack.token("root", "admin")) as admin:
        fields: dict[str, Any] = {
            "currency": "USD", "starting_price": 1000, "min_increment": 100, "ends_at": FAR, **kw,
        }  # fmt: skip
        return await admin.create_item("Kettle", **fields)


async def test_the_sdk_creates_items_with_a_reserve_and_a_soft_close(lua_stack: RestStack) -> None:
    """`reserve_price` is hidden from bidders (they see `reserve_met`), `soft_close` is echoed."""
    cap = datetime(2099, 1, 2, tzinfo=UTC)
    rule = SoftCloseRequest(window_seconds=30, extension_seconds=60, max_ends_at=cap)
    created = await new_item(lua_stack, reserve_price=5000, soft_close=rule)
    assert created.reserve_price == 5000  # the admin's own answer
    assert created.soft_close is not None
    assert (created.soft_close.window_seconds, created.soft_close.extension_seconds) == (30, 60)
    assert created.soft_close.max_ends_at == cap
    async with AsyncAuctionClient(lua_stack.base_url, lua_stack.token("ann")) as ann:
        seen = await ann.get_item(created.id)
        assert seen.reserve_price is None
        assert seen.reserve_met is False
        with pytest.raises(ValidationFailed):
            await new_item(lua_stack, reserve_price=10)  # below the starting price


async def test_maximums_lead_and_the_positional_amount_still_works(lua_stack: RestStack) -> None:
    item = await new_item(lua_stack, increments=LADDER)
    assert item.increments is not None
    assert [(step.from_, step.increment) for step in item.increments] == LADDER
    assert item.min_next_bid == 1000
    async with (
        AsyncAuctionClient(lua_stack.base_url, lua_stack.token("ann")) as ann,
        AsyncAuctionClient(lua_stack.base_url, lua_stack.token("bob")) as bob,
    ):
        lead = await ann.place_bid(item.id, max_amount=6000)
        assert (lead.amount, lead.leading, lead.item.current_price) == (1000, True, 1000)
        beaten = await bob.place_bid(item.id, 5000)  # positional, as before
        assert beaten.leading is False
        # Ann defends at 5000 + the ladder's 500 there, capped at her 6000: 5500.
        assert (beaten.item.current_price, beaten.item.highest_bidder, beaten.item.min_next_bid) == (
            5500, "ann", 6000,
        )  # fmt: skip
        raised = await ann.place_bid(item.id, max_amount=9000)
        assert (raised.leading, raised.item.current_price) == (True, 5500)
        both = await bob.place_bid(item.id, amount=6000, max_amount=12_000)
        assert (both.leading, both.item.current_price, both.item.highest_bidder) == (True, 9500, "bob")
        assert "12000" not in both.model_dump_json()


async def test_bid_kind_refusals_are_typed_and_change_nothing(lua_stack: RestStack) -> None:
    item = await new_item(lua_stack)
    async with AsyncAuctionClient(lua_stack.base_url, lua_stack.token("cy")) as cy:
        with pytest.raises(BidTooLow) as low:
            await cy.place_bid(item.id, max_amount=999)
        assert low.value.min_next_bid == 1000
        with pytest.raises(ValidationFailed) as invalid:
            await cy.place_bid(item.id, amount=1500, max_amount=1400)
        assert "max_amount must be at least amount" in invalid.value.detail
        with pytest.raises(ValueError, match="amount, max_amount or both"):
            await cy.place_bid(item.id)
        await cy.place_bid(item.id, max_amount=3000, idempotency_key="k-max")
        again = await cy.place_bid(item.id, max_amount=3000, idempotency_key="k-max")
        assert again.seq == 2
        with pytest.raises(IdempotencyKeyReused):
            await cy.place_bid(item.id, max_amount=3100, idempotency_key="k-max")
        assert (await cy.get_item(item.id)).seq == 2
    async with AsyncAuctionClient(lua_stack.base_url, lua_stack.token("root", "admin")) as admin:
        with pytest.raises(ValidationFailed) as bad_ladder:
            await admin.create_item(
                "Bad", currency="USD", starting_price=1, min_increment=10, ends_at=FAR, increments=[(5, 10)]
            )
        assert "from = 0" in bad_ladder.value.detail
        with pytest.raises(ValidationFailed):
            await admin.create_item(
                "Bad", currency="USD", starting_price=100, min_increment=10, ends_at=FAR, buy_now_price=100
            )


async def test_buy_now_wins_once_and_its_errors_are_typed(lua_stack: RestStack) -> None:
    item = await new_item(lua_stack, buy_now_price=8000)
    assert item.buy_now_price == 8000
    bid_first = await new_item(lua_stack, buy_now_price=8000)
    later = await new_item(lua_stack, buy_now_price=8000, starts_at=FAR - timedelta(days=1))
    async with (
        AsyncAuctionClient(lua_stack.base_url, lua_stack.token("dee")) as dee,
        AsyncAuctionClient(lua_stack.base_url, lua_stack.token("eve")) as eve,
    ):
        won = await dee.buy_now(item.id, idempotency_key="buy-dee")
        assert (won.amount, won.leading, won.item.status.value) == (8000, True, "closed")
        assert won.item.result is not None
        assert (won.item.result.winner, won.item.result.final_price) == ("dee", 8000)
        assert await dee.buy_now(item.id, idempotency_key="buy-dee") == won
        with pytest.raises(AuctionClosed):
            await eve.buy_now(item.id)
        await eve.place_bid(bid_first.id, 1000)
        with pytest.raises(BuyNowUnavailable) as gone:
            await dee.buy_now(bid_first.id)
        assert gone.value.status == 409
        with pytest.raises(AuctionNotOpen):
            await dee.buy_now(later.id)


async def test_a_buy_whose_answer_is_lost_is_retried_and_hears_that_it_won(lua_stack: RestStack) -> None:
    item = await new_item(lua_stack, buy_now_price=4000)
    edge_port = int(lua_stack.base_url.rsplit(":", 1)[1])
    async with DropFirstResponse(edge_port) as proxy:
        async with AsyncAuctionClient(
            f"http://127.0.0.1:{proxy.port}", lua_stack.token("fay"), retry=QUICK
        ) as fay:
            result = await fay.buy_now(item.id)
        assert proxy.connections == 2
    assert (result.seq, result.amount, result.leading) == (2, 4000, True)
    async with AsyncAuctionClient(lua_stack.base_url) as anyone:
        final = await anyone.get_item(item.id)
    assert (final.bid_count, final.seq, final.highest_bidder) == (1, 3, "fay")


async def test_the_sync_client_wraps_the_bid_kinds(lua_stack: RestStack) -> None:
    proxy_item = await new_item(lua_stack)
    buy_item = await new_item(lua_stack, buy_now_price=2000)

    def use_sync() -> tuple[BidResult, BidResult]:
        with AuctionClient(lua_stack.base_url, lua_stack.token("gus")) as gus:
            return gus.place_bid(proxy_item.id, max_amount=5000), gus.buy_now(buy_item.id)

    placed, bought = await asyncio.to_thread(use_sync)
    assert (placed.amount, placed.leading) == (1000, True)
    assert (bought.amount, bought.item.status.value) == (2000, "closed")


def result(leading: bool, *, price: int = 1500, amount: int = 1500) -> BidResult:
    item = sample_item(current_price=price, highest_bidder="ann", bid_count=2, min_next_bid=price + 10)
    return BidResult(bid_id="it0.3", seq=3, amount=amount, leading=leading, item=item)


def test_describe_bid_tells_the_owner_about_their_maximum_and_being_outbid() -> None:
    plain = describe_bid(result(True), None)
    assert plain == "accepted: bid it0.3 (seq 3) of 15.00 USD; next minimum 15.10 USD"
    proxy = describe_bid(result(True), 9000)
    assert proxy.endswith("you lead up to your maximum of 90.00 USD")
    beaten = describe_bid(result(False, price=2010, amount=2000), 2000)
    assert "outbid at once: the leader's maximum is higher; the price is now 20.10 USD" in beaten
    assert "maximum of" not in beaten


def test_items_show_has_the_ladder_and_the_buy_now_state() -> None:
    ladder = [{"from": 0, "increment": 100}, {"from": 5000, "increment": 500}]
    text = describe_item(sample_item(increments=ladder, buy_now_price=8000))
    assert "increments    1.00 USD from 0.00 USD, 5.00 USD from 50.00 USD" in text
    assert f"buy now       80.00 USD (available: auction buy {sample_item().id})" in text
    after_bid = describe_item(sample_item(buy_now_price=8000, bid_count=1, current_price=100))
    assert "buy now       80.00 USD (gone: the item has a bid)" in after_bid
    plain = describe_item(sample_item())
    assert "increments" not in plain
    assert "buy now" not in plain
