"""The item's public JSON, from the protobuf `Item`: the REST answers and the fan-out's snapshots.

Done by hand because it is on the hot path: `MessageToDict` walks descriptors and produces the wrong
shapes anyway (int64 as strings, enum names, nanosecond timestamps). Fields are read directly, in the
contract's member order, so the same message always gives byte-identical JSON, which idempotent
replays rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auction.v1 import item_pb2
from auction_contract.proto_status import STATUS_NAMES, STATUS_VALUES
from auction_contract.wire_time import format_timestamp, parse_timestamp


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
    """The inverse of `item_json` (for clients and tests; the services never need it)."""
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
