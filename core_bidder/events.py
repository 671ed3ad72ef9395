"""Event payloads, serialized once: the same bytes go to the item's history, the outbox and Pub/Sub.

`place_bid.lua` builds the bid event itself; `bid_event` here is its twin for the WATCH strategy,
and tests hold the two to the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from core_bidder.rules import ItemStatic, bid_id_for


def rfc3339_ms(ms: int) -> str:
    """`2026-11-23T12:00:00.123Z`: UTC with milliseconds, as the contract writes times."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def bid_event(item_id: str, seq: int, bidder: str, amount: int, placed_ms: int, min_next_bid: int) -> str:
    # Ids and bidder names are restricted to JSON-safe characters, so plain formatting is exact.
    return (
        f'{{"type":"bid","item_id":"{item_id}","seq":{seq},"bid_id":"{bid_id_for(item_id, seq)}",'
        f'"bidder":"{bidder}","amount":{amount},"placed_at":"{rfc3339_ms(placed_ms)}",'
        f'"current_price":{amount},"min_next_bid":{min_next_bid}}}'
    )


def created_event(item: ItemStatic, ends_ms: int) -> str:
    return orjson.dumps(
        {
            "type": "created",
            "item_id": item.id,
            "seq": 1,
            "title": item.title,
            "description": item.description,
            "currency": item.currency,
            "starting_price": item.starting_price,
            "min_increment": item.min_increment,
            "starts_at": rfc3339_ms(item.starts_ms),
            "ends_at": rfc3339_ms(ends_ms),
            "created_at": rfc3339_ms(item.created_ms),
        }
    ).decode()
