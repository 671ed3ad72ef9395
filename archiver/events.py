"""Events to rows, without I/O: what the archive stores for each kind of event.

- ItemCreated -> `items` (with its soft close rule, hidden reserve, increment ladder and buy-now price);
  BidAccepted -> `bids` (with the bid's currency, or the item's when the event has none, and its proxy
  flag); AuctionExtended -> `extensions` (and the item's effective `ends_at` moves); AuctionClosed ->
  `auction_results`, the item's one result row; any later kind -> `other_events`, whole, so nothing is
  dropped before the archive learns to project it. No event holds a maximum: those come as audit
  records from their own stream (`archiver/audit.py`) into `maximum_audit`, which no public call reads.
- A message that is not a valid event -> `dead_letters` with its raw bytes, so it is acked (it could
  never succeed) without being lost.

Within one batch an event id appears once: redeliveries can repeat an event inside a fetch. Rows are
tuples in column order, so the writer turns a batch into column arrays with one `zip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import orjson
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import events_pb2, item_pb2
from auction_contract.events import Outcome


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as the consumer got it."""

    stream_seq: int
    subject: str
    data: bytes


class ItemRow(NamedTuple):
    item_id: str
    title: str
    description: str
    currency: str
    starting_price: int
    min_increment: int
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    # The soft close rule (all None: a hard end; the cap alone None: no cap) and the hidden reserve.
    soft_window_seconds: int | None = None
    soft_extension_seconds: int | None = None
    soft_max_ends_at: datetime | None = None
    reserve_price: int | None = None
    # The ladder as JSON text ([{"from", "increment"}, ...]; None: none) and the buy-now price.
    increments: str | None = None
    buy_now_price: int | None = None


class BidRow(NamedTuple):
    item_id: str
    seq: int
    bid_id: str
    bidder: str
    amount: int
    currency: str
    current_price: int
    min_next_bid: int
    placed_at: datetime
    proxy: bool = False


class AuditRow(NamedTuple):
    """AUDIT ONLY, never public: `bidder`'s maximum after the item's event `seq` (`kind` bid or raise)."""

    item_id: str
    seq: int
    kind: str
    bidder: str
    max_amount: int
    at: datetime


class ExtensionRow(NamedTuple):
    item_id: str
    seq: int
    event_id: str
    ends_at: datetime
    previous_ends_at: datetime


class ResultRow(NamedTuple):
    item_id: str
    seq: int
    event_id: str
    outcome: str
    winner: str | None
    final_price: int | None
    bid_count: int
    closed_at: datetime


class OtherRow(NamedTuple):
    event_id: str
    item_id: str
    seq: int
    kind: str
    occurred_at: datetime
    payload: bytes


class DeadLetter(NamedTuple):
    stream_seq: int
    subject: str
    payload: bytes
    error: str


@dataclass
class Rows:
    items: list[ItemRow] = field(default_factory=list)
    bids: list[BidRow] = field(default_factory=list)
    extensions: list[ExtensionRow] = field(default_factory=list)
    results: list[ResultRow] = field(default_factory=list)
    others: list[OtherRow] = field(default_factory=list)
    audits: list[AuditRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # Event ids seen in this batch (repeats dropped).
    seen: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        tables = (self.items, self.bids, self.extensions, self.results, self.others, self.audits, self.dead)
        return sum(len(rows) for rows in tables)


def utc(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def rows_of(messages: list[Incoming]) -> Rows:
    rows = Rows()
    for message in messages:
        add(rows, message)
    return rows


def add(rows: Rows, message: Incoming) -> None:
    try:
        event = events_pb2.Event.FromString(message.data)
        kind = event.WhichOneof("kind")
        problem = _problem(event, kind)
        if problem is None:
            if event.event_id in rows.seen:
                return
            _project(rows, event, kind, message.data)
            rows.seen.add(event.event_id)
            return
    except (DecodeError, ValueError, OverflowError) as exc:  # not protobuf, or a time out of range
        problem = f"not a valid Event: {exc!r}"
    rows.dead.append(DeadLetter(message.stream_seq, message.subject, message.data, problem))


def _project(rows: Rows, event: events_pb2.Event, kind: str | None, data: bytes) -> None:
    if kind == "bid_accepted":
        bid = event.bid_accepted
        rows.bids.append(
            BidRow(
                item_id=event.item_id,
                seq=event.seq,
                bid_id=bid.bid_id or event.event_id,
                bidder=bid.bidder,
                amount=bid.amount,
                currency=bid.currency,
                current_price=bid.current_price,
                min_next_bid=bid.min_next_bid,
                placed_at=utc(event.occurred_at),
                proxy=bid.proxy,
            )
        )
    elif kind == "item_created":
        item = event.item_created.item
        soft = item.soft_close if item.HasField("soft_close") else None
        rows.items.append(
            ItemRow(
                item_id=event.item_id,
                title=item.title,
                description=item.description,
                currency=item.currency,
                starting_price=item.starting_price,
                min_increment=item.min_increment,
                starts_at=utc(item.starts_at),
                ends_at=utc(item.ends_at),
                created_at=utc(item.created_at),
                soft_window_seconds=None if soft is None else soft.window_seconds,
                soft_extension_seconds=None if soft is None else soft.extension_seconds,
                soft_max_ends_at=(
                    utc(soft.max_ends_at) if soft is not None and soft.HasField("max_ends_at") else None
                ),
                reserve_price=item.reserve_price if item.HasField("reserve_price") else None,
                increments=_ladder_json(item) if item.increments else None,
                buy_now_price=item.buy_now_price if item.HasField("buy_now_price") else None,
            )
        )
    elif kind == "auction_extended":
        extended = event.auction_extended
        rows.extensions.append(
            ExtensionRow(
                event.item_id,
                event.seq,
                event.event_id,
                utc(extended.ends_at),
                utc(extended.previous_ends_at),
            )
        )
    elif kind == "auction_closed":
        closed = event.auction_closed
        sold = closed.outcome == item_pb2.AUCTION_OUTCOME_SOLD
        rows.results.append(
            ResultRow(
                item_id=event.item_id,
                seq=event.seq,
                event_id=event.event_id,
                outcome=Outcome.SOLD.value if sold else Outcome.NO_SALE.value,
                winner=closed.winner if sold else None,
                final_price=closed.final_price if sold else None,
                bid_count=closed.bid_count,
                closed_at=utc(closed.closed_at),
            )
        )
    else:
        rows.others.append(
            OtherRow(event.event_id, event.item_id, event.seq, str(kind), utc(event.occurred_at), data)
        )


def _ladder_json(item: item_pb2.Item) -> str:
    steps = [{"from": step.from_price, "increment": step.increment} for step in item.increments]
    return orjson.dumps(steps).decode()


def _problem(event: events_pb2.Event, kind: str | None) -> str | None:
    """Why this event cannot be archived, or None."""
    if not event.event_id or not event.item_id or event.seq < 1:
        return "event without event_id, item_id or seq"
    if kind is None:
        return "event of no kind"
    texts = [event.event_id, event.item_id]
    if kind == "bid_accepted":
        bid = event.bid_accepted
        texts += [bid.bid_id, bid.bidder, bid.currency]
    elif kind == "item_created":
        item = event.item_created.item
        if item.id not in ("", event.item_id):
            return "item_created for another item"
        texts += [item.title, item.description, item.currency]
    elif kind == "auction_extended":
        extended = event.auction_extended
        if not (extended.HasField("ends_at") and extended.HasField("previous_ends_at")):
            return "auction_extended without its ends"
    elif kind == "auction_closed":
        problem = _closed_problem(event.auction_closed)
        if problem is not None:
            return problem
        texts.append(event.auction_closed.winner)
    if any("\x00" in text for text in texts):
        return "text with NUL characters (PostgreSQL text cannot hold them)"
    return None


def _closed_problem(closed: events_pb2.AuctionClosed) -> str | None:
    if not closed.HasField("closed_at"):
        return "auction_closed without closed_at"
    if closed.outcome == item_pb2.AUCTION_OUTCOME_SOLD:
        if not (closed.HasField("winner") and closed.winner and closed.HasField("final_price")):
            return "auction_closed: a sale without its winner or final price"
    elif closed.outcome == item_pb2.AUCTION_OUTCOME_NO_SALE:
        if closed.HasField("winner") or closed.HasField("final_price"):
            return "auction_closed: no sale, yet a winner or a final price"
    else:
        return "auction_closed without an outcome"
    return None
