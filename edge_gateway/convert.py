"""Protobuf <-> JSON for the REST API, done by hand because it is on the hot path.

`MessageToDict` walks descriptors and produces the wrong shapes anyway (int64 as strings, enum names,
nanosecond timestamps), so fields are read directly, in the contract's member order: the same message
always gives byte-identical JSON, which idempotent replays rely on. Times are RFC 3339 UTC with
milliseconds and `Z`; the formatting is memoised because an item's `starts_at`/`ends_at` repeat in every
answer about it.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2, item_pb2

if TYPE_CHECKING:
    from auction.v1 import history_pb2
    from edge_gateway.schemas import CreateItemRequest

STATUS_NAMES: dict[int, str] = {
    item_pb2.ITEM_STATUS_SCHEDULED: "scheduled",
    item_pb2.ITEM_STATUS_OPEN: "open",
    item_pb2.ITEM_STATUS_CLOSED: "closed",
}
STATUS_VALUES: dict[str, item_pb2.ItemStatus.ValueType] = {
    "scheduled": item_pb2.ITEM_STATUS_SCHEDULED,
    "open": item_pb2.ITEM_STATUS_OPEN,
    "closed": item_pb2.ITEM_STATUS_CLOSED,
}


@lru_cache(maxsize=16_384)
def _rfc3339(seconds: int, millis: int) -> str:
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def format_timestamp(ts: Timestamp) -> str:
    """`2026-11-23T12:00:00.123Z` (milliseconds, truncated)."""
    return _rfc3339(ts.seconds, ts.nanos // 1_000_000)


def timestamp_from_datetime(value: datetime) -> Timestamp:
    """A protobuf timestamp for an aware datetime (any offset; stored as UTC)."""
    utc = value.astimezone(UTC)
    return Timestamp(seconds=calendar.timegm(utc.timetuple()), nanos=utc.microsecond * 1000)


def parse_timestamp(text: str) -> Timestamp:
    """The inverse of `format_timestamp` for any RFC 3339 time with an offset."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return timestamp_from_datetime(value)


def item_json(item: item_pb2.Item) -> dict[str, Any]:
    """The contract's item object."""
    return {
        "id": item.id,
        "title": item.title,
        "description": item.description,
        "currency": item.currency,
        "status": STATUS_NAMES[item.status],
        "starting_price": item.starting_price,
        "min_increment": item.min_increment,
        "current_price": item.current_price if item.HasField("current_price") else None,
        "highest_bidder": item.highest_bidder if item.HasField("highest_bidder") else None,
        "bid_count": item.bid_count,
        "min_next_bid": item.min_next_bid,
        "starts_at": format_timestamp(item.starts_at),
        "ends_at": format_timestamp(item.ends_at),
        "seq": item.seq,
    }


def item_from_json(data: Mapping[str, Any]) -> item_pb2.Item:
    """The inverse of `item_json` (for clients and tests; the gateway itself never needs it)."""
    item = item_pb2.Item(
        id=data["id"],
        title=data["title"],
        description=data["description"],
        currency=data["currency"],
        status=STATUS_VALUES[data["status"]],
        starting_price=data["starting_price"],
        min_increment=data["min_increment"],
        bid_count=data["bid_count"],
        min_next_bid=data["min_next_bid"],
        starts_at=parse_timestamp(data["starts_at"]),
        ends_at=parse_timestamp(data["ends_at"]),
        seq=data["seq"],
    )
    if data["current_price"] is not None:
        item.current_price = data["current_price"]
    if data["highest_bidder"] is not None:
        item.highest_bidder = data["highest_bidder"]
    return item


def bid_result_json(response: bidder_pb2.PlaceBidResponse) -> dict[str, Any]:
    """`201` body of `POST /items/{id}/bid`."""
    return {
        "bid_id": response.bid_id,
        "seq": response.seq,
        "amount": response.amount,
        "item": item_json(response.item),
    }


def item_list_json(response: bidder_pb2.ListItemsResponse) -> dict[str, Any]:
    """`GET /items` body; an empty `next_cursor` (last page) becomes null."""
    return {
        "items": [item_json(item) for item in response.items],
        "next_cursor": response.next_cursor or None,
    }


def bids_page_json(response: history_pb2.ListBidsResponse) -> dict[str, Any]:
    """`GET /items/{id}/bids` body; `next_before_seq` 0 (no older bids) becomes null."""
    return {
        "bids": [
            {
                "bid_id": bid.bid_id,
                "seq": bid.seq,
                "bidder": bid.bidder,
                "amount": bid.amount,
                "placed_at": format_timestamp(bid.placed_at),
            }
            for bid in response.bids
        ],
        "next_before_seq": response.next_before_seq or None,
    }


def create_item_request(body: CreateItemRequest) -> bidder_pb2.CreateItemRequest:
    """The gRPC request for a validated `POST /items` body (unset `starts_at`: opens at once)."""
    request = bidder_pb2.CreateItemRequest(
        title=body.title,
        description=body.description,
        currency=body.currency,
        starting_price=body.starting_price,
        min_increment=body.min_increment,
        ends_at=timestamp_from_datetime(body.ends_at),
    )
    if body.starts_at is not None:
        request.starts_at.CopyFrom(timestamp_from_datetime(body.starts_at))
    return request
