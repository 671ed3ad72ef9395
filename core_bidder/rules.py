"""The bidder's item shapes, free of I/O. The rules every service shares live in `auction_contract.rules`."""

from __future__ import annotations

from dataclasses import dataclass

from auction_contract.bid_rules import Ladder, increment_at
from auction_contract.events import Outcome, created_event
from auction_contract.rules import ItemStatus, SoftCloseRule, status_at


@dataclass(frozen=True, slots=True)
class ItemStatic:
    """The fields fixed at creation; the bidder caches them so the bid path moves only live ones."""

    id: str
    title: str
    description: str
    currency: str
    starting_price: int
    min_increment: int
    starts_ms: int
    created_ms: int
    soft_close: SoftCloseRule | None = None
    reserve_price: int | None = None
    # The increment ladder as given (None: `min_increment` at every price) and the buy-now price.
    increments: Ladder | None = None
    buy_now_price: int | None = None

    def increment_at(self, price: int) -> int:
        return self.min_increment if self.increments is None else increment_at(self.increments, price)

    def created_event(self, ends_ms: int, *, for_archive: bool = False) -> str:
        """The item's `created` event (seq 1); the archive's copy (the outbox) also names the reserve."""
        return created_event(
            item_id=self.id, title=self.title, description=self.description, currency=self.currency,
            starting_price=self.starting_price, min_increment=self.min_increment,
            starts_ms=self.starts_ms, ends_ms=ends_ms, created_ms=self.created_ms,
            soft_close=self.soft_close, reserve_price=self.reserve_price if for_archive else None,
            increments=self.increments, buy_now_price=self.buy_now_price,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What the close recorded, once."""

    outcome: Outcome
    winner: str | None
    final_price: int | None
    closed_ms: int


@dataclass(frozen=True, slots=True)
class ItemLive:
    """The fields bids, extensions and the close change."""

    current_price: int | None
    highest_bidder: str | None
    bid_count: int
    seq: int
    ends_ms: int
    result: ItemResult | None = None


@dataclass(frozen=True, slots=True)
class ItemView:
    static: ItemStatic
    live: ItemLive

    def status(self, now_ms: int) -> ItemStatus:
        if self.live.result is not None:
            return ItemStatus.CLOSED
        return status_at(now_ms, self.static.starts_ms, self.live.ends_ms)

    @property
    def reserve_met(self) -> bool | None:
        """None without a reserve; else whether the current price meets it."""
        reserve = self.static.reserve_price
        if reserve is None:
            return None
        price = self.live.current_price
        return price is not None and price >= reserve

    @property
    def min_next_bid(self) -> int:
        price = self.live.current_price
        return self.static.starting_price if price is None else price + self.static.increment_at(price)


@dataclass(frozen=True, slots=True)
class AcceptedBid:
    bid_id: str
    seq: int
    amount: int
    placed_ms: int
    item: ItemView
    # Whether the bidder leads after the bid (a maximum may be beaten at once by the leader's).
    leading: bool = True
