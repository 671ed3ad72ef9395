"""Outbox entries to protobuf events, without I/O, so the wire format is tested without servers.

The outbox holds the JSON that `core_bidder` wrote (`auction_contract.events` has the shapes). Each
entry becomes one `auction.v1.Event` whose id is "<item_id>.<seq>", published on `<prefix>.<item_id>`.
Bid events carry their currency from the bid step itself, so every event on the stream is complete on
its own without a lookup. The outbox's `created` event also names the hidden reserve (the live copy
never does), so the archive has it.

No event carries a maximum: this stream is public (`auction.events.<item_id>`, stream `AUCTION`). A
bid's outbox entry may also name the maximum its bidder now leads with (field `m`), and a leader's raise
of their own maximum is an outbox-only `max_raised` entry; both become `MaximumAudit` records
(`relay/audit.py`) on the audit subjects of their own stream, published in the same round right after
the entry's event, if any (`relayed`).

`occurred_at` is when the event happened: a bid's `placed_at`, an item's `created_at`, the close's
`closed_at`. An `extended` event carries no time of its own: it happened when the bid right before it
(seq - 1) was placed, and the only other times it holds are two ends, neither of which is when it
happened. So its `occurred_at` is left unset rather than made up; a reader that needs the moment takes
the `placed_at` of the item's event `seq - 1` (the contract puts the extension right after its bid).
"""

from __future__ import annotations

from typing import Any

from auction.v1 import events_pb2, item_pb2
from auction_contract.events import BadEvent, EventKind, decode_event, event_id_of
from auction_contract.proto_status import OUTCOME_TO_PROTO, STATUS_TO_PROTO
from auction_contract.rules import status_at
from auction_contract.wire_time import parse_ms, timestamp
from relay.audit import audit_id, audit_record
from relay.errors import BadEntry
from relay.route import Outgoing, Route, Routes

__all__ = ["Outgoing", "Relayed", "Route", "Routes", "decode", "outgoing", "parse_ms", "relayed", "to_event"]

# What one outbox entry becomes, in publishing order: its event (if it has one), then its audit record.
Relayed = tuple[Outgoing, ...]


def decode(raw: bytes | str) -> dict[str, Any]:
    """The entry's JSON document; `BadEntry` if it is not an event of a kind we know.

    An item id outside the pattern is refused too: it could not be part of a subject and would poison
    the batch.
    """
    try:
        return decode_event(raw)
    except BadEvent as exc:
        raise BadEntry(str(exc)) from None


def to_event(doc: dict[str, Any]) -> events_pb2.Event:
    """The protobuf event for a decoded entry (not for a `max_raised` one, which is no event).

    A bid written before its event carried a currency (an older bidder) gets "": the archiver fills it
    from its items table.
    """
    try:
        kind = doc["type"]
        if kind == EventKind.BID:
            return _bid(doc)
        if kind == EventKind.MAX_RAISED:
            raise ValueError("a raise of a maximum is an audit record, never an event")
        if kind == EventKind.EXTENDED:
            return _extended(doc)
        if kind == EventKind.CLOSED:
            return _closed(doc)
        return _created(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEntry(f"{doc.get('type')} event is incomplete or malformed: {exc!r}") from None


def outgoing(doc: dict[str, Any], route: Route) -> Outgoing:
    """The entry's public event as a message on `route` (the events stream)."""
    event = to_event(doc)
    return route.message(event.event_id, event.item_id, event.SerializeToString())


def relayed(doc: dict[str, Any], routes: Routes, leader_max: bytes | str | None = None) -> Relayed:
    """Every message of one entry: its public event, then (a maximum, audit only) its audit record.

    `leader_max` is a bid entry's audit field (`m`). The pump publishes the messages in this order in one
    round and removes the entry only when JetStream stored all of them.
    """
    messages = [] if doc.get("type") == EventKind.MAX_RAISED else [outgoing(doc, routes.events)]
    try:
        record = audit_record(doc, leader_max)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEntry(f"{doc.get('type')} entry with a malformed maximum: {exc!r}") from None
    if record is not None:
        messages.append(routes.audit.message(audit_id(record), record.item_id, record.SerializeToString()))
    return tuple(messages)


def _bid(doc: dict[str, Any]) -> events_pb2.Event:
    item_id, seq = doc["item_id"], doc["seq"]
    bid = events_pb2.BidAccepted(
        bid_id=doc["bid_id"],
        bidder=doc["bidder"],
        amount=doc["amount"],
        currency=doc.get("currency", ""),
        current_price=doc["current_price"],
        min_next_bid=doc["min_next_bid"],
        proxy=doc.get("proxy") is True,
    )
    return events_pb2.Event(
        event_id=event_id_of(item_id, seq),
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
        status=STATUS_TO_PROTO[status_at(created, starts, ends)],
        starting_price=doc["starting_price"],
        min_increment=doc["min_increment"],
        bid_count=0,
        min_next_bid=doc["starting_price"],
        starts_at=timestamp(starts),
        ends_at=timestamp(ends),
        seq=seq,
        created_at=timestamp(created),
    )
    rule = doc.get("soft_close")
    if rule is not None:
        if not isinstance(rule, dict):
            raise TypeError("soft_close is not an object")
        item.soft_close.window_seconds = _integer(rule, "window_seconds")
        item.soft_close.extension_seconds = _integer(rule, "extension_seconds")
        cap = rule.get("max_ends_at")
        if cap is not None:
            item.soft_close.max_ends_at.CopyFrom(timestamp(parse_ms(cap)))
    if doc.get("reserve_price") is not None:
        item.reserve_price = _integer(doc, "reserve_price")
        item.reserve_met = False  # no bid yet
    # Bid kinds, present only on items that have them: the archive receives them with the item.
    for step in doc.get("increments") or ():
        if not isinstance(step, dict):
            raise TypeError("an increments step is not an object")
        item.increments.add(from_price=_integer(step, "from"), increment=_integer(step, "increment"))
    if doc.get("buy_now_price") is not None:
        item.buy_now_price = _integer(doc, "buy_now_price")
    return events_pb2.Event(
        event_id=event_id_of(item_id, seq),
        item_id=item_id,
        seq=seq,
        occurred_at=timestamp(created),
        item_created=events_pb2.ItemCreated(item=item),
    )


def _extended(doc: dict[str, Any]) -> events_pb2.Event:
    item_id, seq = doc["item_id"], doc["seq"]
    ends, previous = parse_ms(doc["ends_at"]), parse_ms(doc["previous_ends_at"])
    if ends < previous:
        raise ValueError("an extension never moves the end back")
    extended = events_pb2.AuctionExtended(ends_at=timestamp(ends), previous_ends_at=timestamp(previous))
    # No occurred_at: the event holds no time of when it happened (see the module's docstring).
    return events_pb2.Event(
        event_id=event_id_of(item_id, seq), item_id=item_id, seq=seq, auction_extended=extended
    )


def _closed(doc: dict[str, Any]) -> events_pb2.Event:
    item_id, seq = doc["item_id"], doc["seq"]
    outcome, winner, price = OUTCOME_TO_PROTO[doc["outcome"]], doc["winner"], doc["final_price"]
    closed_ms = parse_ms(doc["closed_at"])
    closed = events_pb2.AuctionClosed(
        outcome=outcome, bid_count=_integer(doc, "bid_count"), closed_at=timestamp(closed_ms)
    )
    if outcome == item_pb2.AUCTION_OUTCOME_SOLD:
        if not isinstance(winner, str) or not winner:
            raise TypeError("a sale without a winner")
        closed.winner = winner
        closed.final_price = _integer(doc, "final_price")
    elif winner is not None or price is not None:
        raise ValueError("no sale, yet a winner or a final price")
    return events_pb2.Event(
        event_id=event_id_of(item_id, seq),
        item_id=item_id,
        seq=seq,
        occurred_at=timestamp(closed_ms),
        auction_closed=closed,
    )


def _integer(doc: dict[str, Any], name: str) -> int:
    """A JSON integer member (not a bool, not a float), at least 0."""
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{name} is not a non-negative integer: {value!r}")
    return value
