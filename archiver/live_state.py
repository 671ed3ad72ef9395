"""An item's live state in Redis, computed from its archived rows, without I/O (used by the rebuild).

The hash fields are those `core_bidder/lua/place_bid.lua` and `core_bidder/store.py` read and write.
The event history stream (viewers resume from it) is refilled with the same JSON bytes the bidder
writes (`core_bidder.events`), but only with a gap-free run of events ending at the newest: a stream
with a hole would tell a resuming viewer it holds events it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core_bidder.events import bid_event, created_event
from core_bidder.rules import ItemStatic

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    item_id: str
    title: str
    description: str
    currency: str
    starting_price: int
    min_increment: int
    starts_ms: int
    ends_ms: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class ArchivedBid:
    seq: int
    bidder: str
    amount: int
    placed_ms: int
    min_next_bid: int


@dataclass(frozen=True, slots=True)
class LiveState:
    # The item hash, field by field, as strings (what HSET stores).
    fields: dict[str, str]
    seq: int
    # (stream entry id "<seq>-0", event JSON), oldest first.
    events: list[tuple[str, str]]


def live_state(item: ArchivedItem, bid_count: int, recent_bids: list[ArchivedBid]) -> LiveState:
    """`recent_bids`: the newest archived bids in ascending seq (at most what the history keeps)."""
    fields = {
        "title": item.title,
        "desc": item.description,
        "cur": item.currency,
        "sp": str(item.starting_price),
        "inc": str(item.min_increment),
        "st": str(item.starts_ms),
        "et": str(item.ends_ms),
        "ct": str(item.created_ms),
        "bc": str(bid_count),
        "seq": "1",
    }
    if recent_bids:
        last = recent_bids[-1]
        fields.update(price=str(last.amount), hb=last.bidder, seq=str(last.seq))
    return LiveState(fields, int(fields["seq"]), _history(item, recent_bids))


def _history(item: ArchivedItem, recent_bids: list[ArchivedBid]) -> list[tuple[str, str]]:
    run: list[ArchivedBid] = []
    for bid in reversed(recent_bids):
        if run and bid.seq != run[-1].seq - 1:
            break
        run.append(bid)
    run.reverse()
    events = [
        (f"{b.seq}-0", bid_event(item.item_id, b.seq, b.bidder, b.amount, b.placed_ms, b.min_next_bid))
        for b in run
    ]
    if not run or run[0].seq == 2:
        static = ItemStatic(
            item.item_id,
            item.title,
            item.description,
            item.currency,
            item.starting_price,
            item.min_increment,
            item.starts_ms,
            item.created_ms,
        )
        events.insert(0, ("1-0", created_event(static, item.ends_ms)))
    return events
