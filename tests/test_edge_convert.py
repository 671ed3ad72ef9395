"""Protobuf <-> JSON conversion: the contract's shapes, RFC 3339 millisecond times, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2, history_pb2, item_pb2
from edge_gateway.convert import (
    bid_result_json,
    bids_page_json,
    create_item_request,
    format_timestamp,
    item_from_json,
    item_json,
    item_list_json,
    parse_timestamp,
)
from edge_gateway.schemas import BidResult, BidsPage, CreateItemRequest, Item, ItemList
from tests.test_edge_support import sample_item

CONTRACT_KEYS = [
    "id",
    "title",
    "description",
    "currency",
    "status",
    "starting_price",
    "min_increment",
    "current_price",
    "highest_bidder",
    "bid_count",
    "min_next_bid",
    "starts_at",
    "ends_at",
    "seq",
    # The lifecycle members (CONTRACT.md "Auction lifecycle"); `reserve_met` only with a reserve.
    "soft_close",
    "result",
]


@pytest.mark.parametrize(
    ("seconds", "nanos", "text"),
    [
        (0, 0, "1970-01-01T00:00:00.000Z"),
        (1_795_000_000, 123_456_789, "2026-11-18T11:06:40.123Z"),
        (1_795_000_000, 999_999_999, "2026-11-18T11:06:40.999Z"),
        (253_402_300_799, 0, "9999-12-31T23:59:59.000Z"),
    ],
)
def test_timestamps_are_rfc3339_utc_milliseconds(seconds: int, nanos: int, text: str) -> None:
    """Always three fractional digits (truncated) and a `Z`."""
    assert format_timestamp(Timestamp(seconds=seconds, nanos=nanos)) == text


def test_parse_accepts_offsets_and_normalises_to_utc() -> None:
    ts = parse_timestamp("2026-11-23T14:00:00.5+02:00")
    assert (ts.seconds, ts.nanos) == (int(datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()), 500_000_000)
    assert format_timestamp(ts) == "2026-11-23T12:00:00.500Z"


def test_parse_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_timestamp("2026-11-23T12:00:00")


def test_item_json_has_the_contract_members_in_order() -> None:
    data = item_json(sample_item(bids=2))
    assert list(data) == CONTRACT_KEYS
    assert data["status"] == "open"
    assert data["current_price"] == 1050
    assert data["highest_bidder"] == "alice"
    assert data["ends_at"].endswith(".250Z")
    Item.model_validate(data)


def test_item_without_bids_has_null_price_and_bidder() -> None:
    """Unset optional proto fields are JSON null, not 0 or ""."""
    data = item_json(sample_item())
    assert data["current_price"] is None
    assert data["highest_bidder"] is None
    assert data["min_next_bid"] == data["starting_price"]


def test_zero_price_bid_is_not_confused_with_no_bid() -> None:
    """HasField, not truthiness: a current price of 0 stays 0."""
    item = sample_item()
    item.current_price = 0
    item.highest_bidder = ""
    data = item_json(item)
    assert data["current_price"] == 0
    assert data["highest_bidder"] == ""


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (item_pb2.ITEM_STATUS_SCHEDULED, "scheduled"),
        (item_pb2.ITEM_STATUS_OPEN, "open"),
        (item_pb2.ITEM_STATUS_CLOSED, "closed"),
    ],
)
def test_status_names(status: item_pb2.ItemStatus.ValueType, name: str) -> None:
    item = sample_item()
    item.status = status
    assert item_json(item)["status"] == name


@pytest.mark.parametrize("bids", [0, 1, 7])
def test_item_round_trip(bids: int) -> None:
    """proto -> JSON -> proto -> JSON is stable (times at millisecond precision)."""
    original = sample_item(bids=bids)
    data = item_json(original)
    again = item_from_json(orjson.loads(orjson.dumps(data)))
    assert item_json(again) == data
    assert again.HasField("current_price") == original.HasField("current_price")


def test_bid_result_is_deterministic_and_documented() -> None:
    response = bidder_pb2.PlaceBidResponse(bid_id="b-1", seq=9, amount=1100, item=sample_item(bids=3))
    first, second = orjson.dumps(bid_result_json(response)), orjson.dumps(bid_result_json(response))
    assert first == second
    data = orjson.loads(first)
    assert list(data) == ["bid_id", "seq", "amount", "leading", "item"]
    assert data["leading"] is False
    BidResult.model_validate(data)


def test_item_json_shows_the_ladder_and_buy_now_price_only_for_items_that_have_them() -> None:
    """Other items' JSON is unchanged (no new members); the buy-now price stays after the first bid
    (a term of the item: `status` and `bid_count` say whether it can still be used)."""
    item = sample_item(bids=2)
    item.increments.add(from_price=0, increment=50)
    item.increments.add(from_price=10_000, increment=250)
    item.buy_now_price = 9000
    data = item_json(item)
    assert list(data) == [*CONTRACT_KEYS, "increments", "buy_now_price"]
    assert data["increments"] == [{"from": 0, "increment": 50}, {"from": 10_000, "increment": 250}]
    assert data["buy_now_price"] == 9000
    parsed = Item.model_validate(data)
    assert parsed.increments is not None
    assert parsed.increments[1].from_price == 10_000
    assert item_json(item_from_json(orjson.loads(orjson.dumps(data)))) == data
    assert "increments" not in item_json(sample_item())
    assert "buy_now_price" not in item_json(sample_item())


def test_create_item_request_carries_the_ladder_and_buy_now_price() -> None:
    body = CreateItemRequest.model_validate_json(
        orjson.dumps(
            {
                "title": "Vase", "currency": "EUR", "starting_price": 100, "min_increment": 10,
                "ends_at": "2099-01-01T00:00:00Z", "buy_now_price": 5000.0,
                "increments": [{"from": 0, "increment": 10}, {"from": 1e3, "increment": 50}],
            }
        )
    )  # fmt: skip
    request = create_item_request(body)
    assert [(step.from_price, step.increment) for step in request.increments] == [(0, 10), (1000, 50)]
    assert request.buy_now_price == 5000
    plain = create_item_request(CreateItemRequest.model_validate_json(orjson.dumps(
        {"title": "Vase", "currency": "EUR", "starting_price": 100, "min_increment": 10,
         "ends_at": "2099-01-01T00:00:00Z"}
    )))  # fmt: skip
    assert not plain.increments
    assert not plain.HasField("buy_now_price")


def test_item_list_last_page_has_null_cursor() -> None:
    page = item_list_json(bidder_pb2.ListItemsResponse(items=[sample_item()], next_cursor=""))
    assert page["next_cursor"] is None
    ItemList.model_validate(page)
    more = item_list_json(bidder_pb2.ListItemsResponse(items=[], next_cursor="abc"))
    assert more == {"items": [], "next_cursor": "abc"}


def test_bids_page() -> None:
    bid = history_pb2.Bid(bid_id="b-3", item_id="lot-1", seq=3, bidder="bob", amount=1200, currency="EUR")
    bid.placed_at.FromMilliseconds(1_795_000_000_123)
    page = bids_page_json(history_pb2.ListBidsResponse(bids=[bid], next_before_seq=0))
    assert page == {
        "bids": [
            {
                "bid_id": "b-3",
                "seq": 3,
                "bidder": "bob",
                "amount": 1200,
                "placed_at": "2026-11-18T11:06:40.123Z",
            }
        ],
        "next_before_seq": None,
    }
    BidsPage.model_validate(page)


def test_create_item_request_round_trip() -> None:
    """A validated body becomes the gRPC request; times survive with their instant preserved."""
    starts = datetime.now(timezone(timedelta(hours=-5))) + timedelta(days=1)
    ends = starts + timedelta(hours=2, milliseconds=250)
    body = CreateItemRequest.model_validate_json(
        orjson.dumps(
            {
                "title": "Vase",
                "currency": "EUR",
                "starting_price": 0,
                "min_increment": 1,
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
            }
        )
    )
    request = create_item_request(body)
    assert (request.title, request.description, request.currency) == ("Vase", "", "EUR")
    assert (request.starting_price, request.min_increment) == (0, 1)
    assert request.starts_at.ToDatetime(tzinfo=UTC) == starts
    assert request.ends_at.ToDatetime(tzinfo=UTC) == ends


def test_create_item_without_start_leaves_it_unset() -> None:
    """Unset starts_at means "open at once" to the bidder."""
    body = CreateItemRequest(
        title="Vase",
        currency="EUR",
        starting_price=5,
        min_increment=1,
        ends_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert not create_item_request(body).HasField("starts_at")
