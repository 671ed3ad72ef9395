"""Outbox entries to protobuf events, without I/O, so the wire format is tested without servers.

The outbox holds the JSON that `core_bidder` wrote (`core_bidder/events.py` and the Lua scripts have the
shapes). Each entry becomes one `auction.v1.Event` whose id is "<item_id>.<seq>", published on
`<prefix>.<item_id>`. Bid events carry no currency in the outbox; the caller supplies it (see
`relay.currency`) so that every event on the stream is complete on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from auction.v1 import events_pb2, item_pb2
from core_bidder.convert import timestamp
from core_bidder.keys import ITEM_ID_PATTERN
from core_bidder.rules import ItemStatus, status_at
from relay.errors import BadEntry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_STATUS = {
    ItemStatus.SCHEDULED: item_pb2.ITEM_STATUS_SCHEDULED,
    ItemStatus.OPEN: item_pb2.ITEM_STATUS_OPEN,
    ItemStatus.CLOSED: item_pb2.ITEM_STATUS_CLOSED,
}
KINDS = frozenset({"bid", "created"})


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for JetStream."""

    event_id: str
    subject: str
    payload: bytes


def parse_ms(text: str) -> int:
    """RFC 3339 (as the bidder writes it, `2026-11-23T12:00:00.123Z`) to Unix milliseconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return (moment - _EPOCH) // _MS


def decode(raw: bytes | str) -> dict[str, Any]:
    """The entry's JSON document; `BadEntry` if it is not an event of a kind we know."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEntry(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") not in KINDS:
        raise BadEntry("not an event of a known type")
    item_id = doc.get("item_id")
    if not isinstance(item_id, str) or not isinstance(doc.get("seq"), int):
        raise BadEntry("event without item_id or seq")
    if ITEM_ID_PATTERN.fullmatch(item_id) is None:
        raise BadEntry(f"item id {item_id[:80]!r} cannot be part of a subject")  # it would poison the batch
    return doc


def event_id_of(doc: dict[str, Any]) -> str:
    return f"{doc['item_id']}.{doc['seq']}"


def to_event(doc: dict[str, Any], currency: str) -> events_pb2.Event:
    """The protobuf event for a decoded entry; `currency` is used for bids (created events carry theirs)."""
    try:
        if doc["type"] == "bid":
            return _bid(doc, currency)
        return _created(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEntry(f"{doc.get('type')} event is incomplete or malformed: {exc!r}") from None


def outgoing(doc: dict[str, Any], currency: str, subject_prefix: str) -> Outgoing:
    event = to_event(doc, currency)
    return Outgoing(event.event_id, f"{subject_prefix}.{event.item_id}", event.SerializeToString())


def _bid(doc: dict[str, Any], currency: str) -> events_pb2.Event:
    item_id, seq = doc["item_id"], doc["seq"]
    bid = events_pb2.BidAccepted(
        bid_id=doc["bid_id"],
        bidder=doc["bidder"],
        amount=doc["amount"],
        currency=currency,
        current_price=doc["current_price"],
        min_next_bid=doc["min_next_bid"],
    )
    return events_pb2.Event(
        event_id=f"{item_id}.{seq}",
        item_id=item_id,
        seq=seq,
        occurred_at=timestamp(parse_ms(doc["placed_at"])),
        bid_accepted=bid,
    )


def _created(doc: dict[str, Any]) -> events_pb2.Event:
    item_id, seq = doc["item_id"], doc["seq"]
    starts, ends, created = parse_ms(doc["starts_at"]), parse_ms(doc["ends_at"]), parse_ms(doc["created_at"])
    item = item_pb2.Item(
        id=item_id,
        title=doc["title"],
        description=doc["description"],
        currency=doc["currency"],
        # The status at creation; a reader derives the current one from the window.
        status=_STATUS[status_at(created, starts, ends)],
        starting_price=doc["starting_price"],
        min_increment=doc["min_increment"],
        bid_count=0,
        min_next_bid=doc["starting_price"],
        starts_at=timestamp(starts),
        ends_at=timestamp(ends),
        seq=seq,
        created_at=timestamp(created),
    )
    return events_pb2.Event(
        event_id=f"{item_id}.{seq}",
        item_id=item_id,
        seq=seq,
        occurred_at=timestamp(created),
        item_created=events_pb2.ItemCreated(item=item),
    )
