"""An item's live state in Redis, computed from its archived rows, without I/O (used by `restore`).

The hash fields are the contract's (`auction_contract.redis_layout.ItemField`), which the bidder's Lua
scripts read and write, spelled as `create_item.lua`, `place_bid.lua` and `close_item.lua` leave them:
the soft close fields only with a rule, the reserve, the increment ladder and the buy-now price only
with one, the leader's hidden maximum only while above the price (from the archive's audit records), the
result only once closed (the winner and final price only with a sale), `et` the effective end and `seq`
the newest event's, whatever its kind. The event history stream (viewers resume from it) is refilled
with the same JSON bytes the bidder writes (`auction_contract.events`): bids, extensions and the close,
but only a gap-free run of events ending at the newest: a stream with a hole would tell a resuming viewer
it holds events it does not. The `created` event in it carries the end as created, not the effective
one, as the bidder wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from auction_contract.bid_rules import Ladder, ladder_text
from auction_contract.events import Outcome, bid_event, closed_event, created_event, extended_event
from auction_contract.redis_layout import ItemField
from auction_contract.rules import SoftCloseRule

__all__ = [
    "ArchivedBid",
    "ArchivedClose",
    "ArchivedExtension",
    "ArchivedItem",
    "LiveState",
    "live_state",
]


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    item_id: str
    title: str
    description: str
    currency: str
    starting_price: int
    min_increment: int
    starts_ms: int
    # The effective end (moved by the extensions).
    ends_ms: int
    created_ms: int
    soft_close: SoftCloseRule | None = None
    reserve_price: int | None = None
    # The end as created (the `created` event's); None: `ends_ms` (never extended).
    created_ends_ms: int | None = None
    # Bid kinds: the increment ladder (None: `min_increment` at every price) and the buy-now price.
    increments: Ladder | None = None
    buy_now_price: int | None = None


@dataclass(frozen=True, slots=True)
class ArchivedBid:
    seq: int
    bidder: str
    amount: int
    placed_ms: int
    min_next_bid: int
    proxy: bool = False


@dataclass(frozen=True, slots=True)
class ArchivedExtension:
    seq: int
    ends_ms: int
    previous_ends_ms: int


@dataclass(frozen=True, slots=True)
class ArchivedClose:
    """The item's `closed` event: its result and what the event reported."""

    seq: int
    outcome: Outcome
    winner: str | None
    final_price: int | None
    bid_count: int
    closed_ms: int


@dataclass(frozen=True, slots=True)
class LiveState:
    # The item hash, field by field, as strings (what HSET stores).
    fields: dict[str, str]
    seq: int
    # (stream entry id "<seq>-0", event JSON), oldest first.
    events: list[tuple[str, str]]

    @property
    def closed(self) -> bool:
        """Whether the item has its result (then it leaves the partition's ends set)."""
        return ItemField.OUTCOME.value in self.fields

    @property
    def ends_ms(self) -> int:
        return int(self.fields[ItemField.ENDS_MS.value])


def live_state(
    item: ArchivedItem,
    bid_count: int,
    recent_bids: Sequence[ArchivedBid],
    *,
    extensions: Sequence[ArchivedExtension] = (),
    closed: ArchivedClose | None = None,
    history_keep: int | None = None,
    leader_max: int | None = None,
) -> LiveState:
    """`recent_bids`, `extensions`: the newest archived ones in ascending seq; `closed`: the close, if any;
    `leader_max`: the newest bid's bidder's hidden maximum when above its amount.

    The history holds at most `history_keep` of the newest of these events (None: all of them).
    """
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
    rule = item.soft_close
    if rule is not None:
        fields[ItemField.SOFT_WINDOW_MS.value] = str(rule.window_ms)
        fields[ItemField.SOFT_EXTENSION_MS.value] = str(rule.extension_ms)
        fields[ItemField.SOFT_MAX_ENDS_MS.value] = "" if rule.max_ends_ms is None else str(rule.max_ends_ms)
    if item.reserve_price is not None:
        fields[ItemField.RESERVE_PRICE.value] = str(item.reserve_price)
    if item.increments is not None:
        fields[ItemField.INCREMENTS.value] = ladder_text(item.increments)
    if item.buy_now_price is not None:
        fields[ItemField.BUY_NOW_PRICE.value] = str(item.buy_now_price)
    if recent_bids:
        last = recent_bids[-1]
        fields[ItemField.PRICE.value] = str(last.amount)
        fields[ItemField.HIGHEST_BIDDER.value] = last.bidder
        if leader_max is not None and leader_max > last.amount:
            fields[ItemField.LEADER_MAX.value] = str(leader_max)
    if closed is not None:
        # A buy-now closes before the end, which `buy_now.lua` moves to that moment; a close by the
        # closer comes at or after the end, which stays.
        fields[ItemField.ENDS_MS.value] = str(min(item.ends_ms, closed.closed_ms))
        fields[ItemField.OUTCOME.value] = closed.outcome.value
        if closed.winner is not None:
            fields[ItemField.WINNER.value] = closed.winner
        if closed.final_price is not None:
            fields[ItemField.FINAL_PRICE.value] = str(closed.final_price)
        fields[ItemField.CLOSED_MS.value] = str(closed.closed_ms)
    events = _events(item, recent_bids, extensions, closed)
    seq = events[-1][0] if events else 1
    fields[ItemField.SEQ.value] = str(seq)
    if history_keep is not None:
        events = events[-history_keep:] if history_keep > 0 else []
    return LiveState(fields, seq, _history(item, events, seq))


def _events(
    item: ArchivedItem,
    bids: Sequence[ArchivedBid],
    extensions: Sequence[ArchivedExtension],
    closed: ArchivedClose | None,
) -> list[tuple[int, str]]:
    """Every archived event after `created` that was sent, as (seq, the bidder's JSON), by seq."""
    events = [
        (b.seq, bid_event(item.item_id, b.seq, b.bidder, b.amount, b.placed_ms, b.min_next_bid,
                          currency=item.currency, proxy=b.proxy))
        for b in bids
    ]  # fmt: skip
    events += [
        (e.seq, extended_event(item.item_id, e.seq, e.ends_ms, e.previous_ends_ms)) for e in extensions
    ]
    if closed is not None:
        events.append(
            (
                closed.seq,
                closed_event(
                    item.item_id, closed.seq, outcome=closed.outcome, winner=closed.winner,
                    final_price=closed.final_price, bid_count=closed.bid_count, closed_ms=closed.closed_ms,
                ),
            )
        )  # fmt: skip
    events.sort(key=lambda event: event[0])
    return events


def _history(item: ArchivedItem, events: list[tuple[int, str]], newest: int) -> list[tuple[str, str]]:
    """The gap-free run of `events` ending at the `newest` seq, after `created` if the run reaches it."""
    run: list[tuple[int, str]] = []
    for seq, event in reversed(events):
        if seq != (run[-1][0] - 1 if run else newest):
            break
        run.append((seq, event))
    run.reverse()
    history = [(f"{seq}-0", event) for seq, event in run]
    if (run[0][0] if run else newest) <= 2:
        created = created_event(
            item_id=item.item_id, title=item.title, description=item.description, currency=item.currency,
            starting_price=item.starting_price, min_increment=item.min_increment,
            starts_ms=item.starts_ms,
            ends_ms=item.ends_ms if item.created_ends_ms is None else item.created_ends_ms,
            created_ms=item.created_ms, soft_close=item.soft_close, increments=item.increments,
            buy_now_price=item.buy_now_price,
        )  # fmt: skip
        history.insert(0, ("1-0", created))
    return history
