"""The live event JSON, serialized once: the same bytes go to the item's history, the outbox and Pub/Sub.

Every event is an object `{"type", "item_id", "seq", ...}`. `place_bid.lua` builds the bid event
itself; `bid_event` here is its twin (for the WATCH strategy and the rebuild), and tests hold the two
to the same bytes. `decode_event` is the one reader (the relay), `seq_of` the fast one (the fan-out).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import orjson

from auction_contract.rules import SoftCloseRule, bid_id_for, is_item_id
from auction_contract.wire_time import rfc3339_ms


class EventKind(StrEnum):
    CREATED = "created"
    BID = "bid"
    EXTENDED = "extended"
    CLOSED = "closed"
    # OUTBOX ONLY (audit, never public): the leader raised their own maximum without moving the price, so
    # no bid event says so; `max_raised_entry` is written to the outbox alone, for the archive.
    MAX_RAISED = "max_raised"


class Outcome(StrEnum):
    """How an auction ended (the `closed` event's `outcome`, the item's `result.outcome`)."""

    SOLD = "sold"
    NO_SALE = "no_sale"


KINDS = frozenset(kind.value for kind in EventKind)


class BadEvent(ValueError):
    """Bytes that are not an event of a kind this version knows."""


def bid_event(
    item_id: str,
    seq: int,
    bidder: str,
    amount: int,
    placed_ms: int,
    min_next_bid: int,
    *,
    currency: str,
    proxy: bool = False,
) -> str:
    """The bid event, currency included, so every reader (relay, archive) has it without a lookup.

    `proxy`: the platform chose the amount for the bidder's maximum (`"proxy":true`, last; plain bids'
    bytes are as they always were). The maximum itself is never in an event."""
    # Ids, bidder names and currencies are restricted to JSON-safe characters: plain formatting is exact.
    return (
        f'{{"type":"bid","item_id":"{item_id}","seq":{seq},"bid_id":"{bid_id_for(item_id, seq)}",'
        f'"bidder":"{bidder}","amount":{amount},"currency":"{currency}",'
        f'"placed_at":"{rfc3339_ms(placed_ms)}",'
        f'"current_price":{amount},"min_next_bid":{min_next_bid}' + (',"proxy":true}' if proxy else "}")
    )


def created_event(
    *,
    item_id: str,
    title: str,
    description: str,
    currency: str,
    starting_price: int,
    min_increment: int,
    starts_ms: int,
    ends_ms: int,
    created_ms: int,
    soft_close: SoftCloseRule | None = None,
    reserve_price: int | None = None,
    increments: Sequence[tuple[int, int]] | None = None,
    buy_now_price: int | None = None,
) -> str:
    """The item's first event (`increments` and `buy_now_price` only when the item has them).

    `reserve_price` is given only for the outbox's copy (the archive keeps
    the reserve; viewers never see it): the live channel and the history get the copy without it."""
    doc: dict[str, Any] = {
        "type": EventKind.CREATED.value,
        "item_id": item_id,
        "seq": 1,
        "title": title,
        "description": description,
        "currency": currency,
        "starting_price": starting_price,
        "min_increment": min_increment,
        "starts_at": rfc3339_ms(starts_ms),
        "ends_at": rfc3339_ms(ends_ms),
        "created_at": rfc3339_ms(created_ms),
        "soft_close": soft_close_json(soft_close),
    }
    if increments is not None:
        doc["increments"] = [{"from": start, "increment": step} for start, step in increments]
    if buy_now_price is not None:
        doc["buy_now_price"] = buy_now_price
    if reserve_price is not None:
        doc["reserve_price"] = reserve_price
    return orjson.dumps(doc).decode()


def max_raised_entry(item_id: str, seq: int, bidder: str, max_amount: int, raised_ms: int) -> str:
    """The outbox-only record of a leader raising their own maximum (`place_bid.lua` writes the same
    bytes). `seq` is the item's newest event's: the raise came after it and made no event of its own."""
    return (
        f'{{"type":"max_raised","item_id":"{item_id}","seq":{seq},"bidder":"{bidder}",'
        f'"max_amount":{max_amount},"raised_at":"{rfc3339_ms(raised_ms)}"}}'
    )


def soft_close_json(rule: SoftCloseRule | None) -> dict[str, Any] | None:
    """The contract's `soft_close` object (null for a hard end)."""
    if rule is None:
        return None
    return {
        "window_seconds": rule.window_ms // 1000,
        "extension_seconds": rule.extension_ms // 1000,
        "max_ends_at": rfc3339_ms(rule.max_ends_ms) if rule.max_ends_ms is not None else None,
    }


def extended_event(item_id: str, seq: int, ends_ms: int, previous_ends_ms: int) -> str:
    """A late bid moved the end (soft close); `close_item.lua`'s and `place_bid.lua`'s twin."""
    return (
        f'{{"type":"extended","item_id":"{item_id}","seq":{seq},'
        f'"ends_at":"{rfc3339_ms(ends_ms)}","previous_ends_at":"{rfc3339_ms(previous_ends_ms)}"}}'
    )


def closed_event(
    item_id: str,
    seq: int,
    *,
    outcome: Outcome,
    winner: str | None,
    final_price: int | None,
    bid_count: int,
    closed_ms: int,
) -> str:
    """The close, the item's last event: `winner` and `final_price` are null without a sale."""
    return orjson.dumps(
        {
            "type": EventKind.CLOSED.value,
            "item_id": item_id,
            "seq": seq,
            "outcome": outcome.value,
            "winner": winner,
            "final_price": final_price,
            "bid_count": bid_count,
            "closed_at": rfc3339_ms(closed_ms),
        }
    ).decode()


def decode_event(raw: bytes | str) -> dict[str, Any]:
    """The event's JSON document, its envelope checked; `BadEvent` when it is not one we know."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") not in KINDS:
        raise BadEvent("not an event of a known type")
    item_id = doc.get("item_id")
    if not isinstance(item_id, str) or not isinstance(doc.get("seq"), int):
        raise BadEvent("event without item_id or seq")
    if not is_item_id(item_id):
        raise BadEvent(f"item id {item_id[:80]!r} is not a valid item id")
    return doc


def seq_of(data: bytes) -> int:
    """The `seq` member of an event's JSON (ValueError when there is none)."""
    try:
        seq = orjson.loads(data)["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError("event without a seq") from exc
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"bad seq {seq!r}")
    return seq


def seq_of_stream_id(entry_id: bytes | str) -> int:
    """History entries are added with id `<seq>-0`."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def event_id_of(item_id: str, seq: int) -> str:
    """An event's unique id (JetStream `Nats-Msg-Id`, the archive's key): the same as a bid's id."""
    return bid_id_for(item_id, seq)
