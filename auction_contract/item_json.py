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
from auction_contract.events import Outcome
from auction_contract.proto_status import OUTCOME_FROM_PROTO, OUTCOME_TO_PROTO, STATUS_NAMES, STATUS_VALUES
from auction_contract.wire_time import format_timestamp, parse_timestamp


def item_json(item: item_pb2.Item, *, admin: bool = False) -> dict[str, Any]:
    """The contract's item object; the hidden reserve only when `admin` (the caller is one).

    The bid kinds' members come only with items that have them, so every other item's JSON is what
    it was before: `increments` (the ladder as created) and `buy_now_price`, shown whenever the item has
    one, not only while buy-now is available: it is a term of the item fixed at creation, like
    `starting_price`, and whether it can still be used follows from `status` and `bid_count` in the
    same object, which bid events keep current (a snapshot patched by events never shows a stale offer).
    """
    doc: dict[str, Any] = {
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
        "soft_close": _soft_close_json(item),
        "result": _result_json(item),
    }
    if item.increments:
        steps = item.increments
        doc["increments"] = [{"from": step.from_price, "increment": step.increment} for step in steps]
    if item.HasField("buy_now_price"):
        doc["buy_now_price"] = item.buy_now_price
    if item.HasField("reserve_met"):
        doc["reserve_met"] = item.reserve_met
        if admin and item.HasField("reserve_price"):
            doc["reserve_price"] = item.reserve_price
    return doc


def _soft_close_json(item: item_pb2.Item) -> dict[str, Any] | None:
    if not item.HasField("soft_close"):
        return None
    rule = item.soft_close
    return {
        "window_seconds": rule.window_seconds,
        "extension_seconds": rule.extension_seconds,
        "max_ends_at": format_timestamp(rule.max_ends_at) if rule.HasField("max_ends_at") else None,
    }


def _result_json(item: item_pb2.Item) -> dict[str, Any] | None:
    if not item.HasField("result"):
        return None
    result = item.result
    return {
        "outcome": OUTCOME_FROM_PROTO.get(result.outcome, Outcome.NO_SALE).value,
        "winner": result.winner if result.HasField("winner") else None,
        "final_price": result.final_price if result.HasField("final_price") else None,
        "closed_at": format_timestamp(result.closed_at),
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
    rule = data.get("soft_close")
    if rule is not None:
        item.soft_close.window_seconds = rule["window_seconds"]
        item.soft_close.extension_seconds = rule["extension_seconds"]
        if rule.get("max_ends_at") is not None:
            item.soft_close.max_ends_at.CopyFrom(parse_timestamp(rule["max_ends_at"]))
    for step in data.get("increments") or ():
        item.increments.add(from_price=step["from"], increment=step["increment"])
    if data.get("buy_now_price") is not None:
        item.buy_now_price = data["buy_now_price"]
    if "reserve_met" in data:
        item.reserve_met = data["reserve_met"]
    if data.get("reserve_price") is not None:
        item.reserve_price = data["reserve_price"]
    result = data.get("result")
    if result is not None:
        item.result.outcome = OUTCOME_TO_PROTO[result["outcome"]]
        if result.get("winner") is not None:
            item.result.winner = result["winner"]
        if result.get("final_price") is not None:
            item.result.final_price = result["final_price"]
        item.result.closed_at.CopyFrom(parse_timestamp(result["closed_at"]))
    return item
