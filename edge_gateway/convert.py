"""Protobuf <-> JSON for the REST API, done by hand because it is on the hot path.

`MessageToDict` walks descriptors and produces the wrong shapes anyway (int64 as strings, enum names,
nanosecond timestamps), so fields are read directly, in the contract's member order: the same message
always gives byte-identical JSON, which idempotent replays rely on. The item itself and times on the
wire come from the contract package (`auction_contract.item_json`, `auction_contract.wire_time`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auction.v1 import bidder_pb2, item_pb2
from auction_contract.item_json import item_from_json, item_json
from auction_contract.proto_status import STATUS_NAMES, STATUS_VALUES
from auction_contract.wire_time import format_timestamp, parse_timestamp, timestamp_from_datetime

if TYPE_CHECKING:
    from auction.v1 import history_pb2
    from edge_gateway.schemas import CreateItemRequest

__all__ = [
    "STATUS_NAMES",
    "STATUS_VALUES",
    "bid_result_json",
    "bids_page_json",
    "create_item_request",
    "format_timestamp",
    "item_from_json",
    "item_json",
    "item_list_json",
    "parse_timestamp",
    "timestamp_from_datetime",
]


def bid_result_json(response: bidder_pb2.PlaceBidResponse) -> dict[str, Any]:
    """`201` body of `POST /items/{id}/bid` and `/buy`."""
    return {
        "bid_id": response.bid_id,
        "seq": response.seq,
        "amount": response.amount,
        "leading": response.leading,
        "item": item_json(response.item),
    }


def item_list_json(response: bidder_pb2.ListItemsResponse, *, admin: bool = False) -> dict[str, Any]:
    """`GET /items` body; an empty `next_cursor` (last page) becomes null."""
    return {
        "items": [item_json(item, admin=admin) for item in response.items],
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
    if body.reserve_price is not None:
        request.reserve_price = body.reserve_price
    if body.increments is not None:
        request.increments.extend(
            item_pb2.IncrementStep(from_price=step.from_price, increment=step.increment)
            for step in body.increments
        )
    if body.buy_now_price is not None:
        request.buy_now_price = body.buy_now_price
    rule = body.soft_close
    if rule is not None:
        request.soft_close.window_seconds = rule.window_seconds
        request.soft_close.extension_seconds = rule.extension_seconds
        if rule.max_ends_at is not None:
            request.soft_close.max_ends_at.CopyFrom(timestamp_from_datetime(rule.max_ends_at))
    return request
