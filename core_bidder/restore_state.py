"""An item's live state in Redis, computed from its archived rows, without I/O (used by `restore`).

The hash fields are the contract's (`auction_contract.redis_layout.ItemField`), which the bidder's Lua
scripts read and write. The event history stream (viewers resume from it) is refilled with the same JSON
bytes the bidder writes (`auction_contract.events`), but only with a gap-free run of events ending at the
newest: a stream with a hole would tell a resuming viewer it holds events it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from auction_contract.events import bid_event, created_event
from auction_contract.redis_layout import ItemField

__all__ = ["ArchivedBid", "ArchivedItem", "LiveState", "live_state"]


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
        ItemField.TITLE.value: item.title,
        ItemField.DESCRIPTION.value: item.description,
        ItemField.CURRENCY.value: item.currency,
        ItemField.STARTING_PRICE.value: str(item.starting_price),
        ItemField.MIN_INCREMENT.value: str(item.min_increment),
        ItemField.STARTS_MS.value: str(item.starts_ms),
        ItemField.ENDS_MS.value: str(item.ends_ms),
        ItemField.CREATED_MS.value: str(item.created_ms),
        ItemField.BID_COUNT.value: str(bid_count),
        ItemField.SEQ.value: "1",
    }
    if recent_bids:
        last = recent_bids[-1]
        fields[ItemField.PRICE.value] = str(last.amount)
        fields[ItemField.HIGHEST_BIDDER.value] = last.bidder
        fields[ItemField.SEQ.value] = str(last.seq)
    return LiveState(fields, int(fields[ItemField.SEQ.value]), _history(item, recent_bids))


def _history(item: ArchivedItem, recent_bids: list[ArchivedBid]) -> list[tuple[str, str]]:
    run: list[ArchivedBid] = []
    for bid in reversed(recent_bids):
        if run and bid.seq != run[-1].seq - 1:
            break
        run.append(bid)
    run.reverse()
    events = [
        (
            f"{b.seq}-0",
            bid_event(
                item.item_id, b.seq, b.bidder, b.amount, b.placed_ms, b.min_next_bid, currency=item.currency
            ),
        )
        for b in run
    ]
    if not run or run[0].seq == 2:
        created = created_event(
            item_id=item.item_id, title=item.title, description=item.description, currency=item.currency,
            starting_price=item.starting_price, min_increment=item.min_increment,
            starts_ms=item.starts_ms, ends_ms=item.ends_ms, created_ms=item.created_ms,
        )  # fmt: skip
        events.insert(0, ("1-0", created))
    return events
