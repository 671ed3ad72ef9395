"""The bidder's item shapes, free of I/O. The rules every service shares live in `auction_contract.rules`."""

from __future__ import annotations

from dataclasses import dataclass

from auction_contract.events import created_event
from auction_contract.rules import ItemStatus, min_next_bid, status_at


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

    def created_event(self, ends_ms: int) -> str:
        """The item's `created` event (seq 1)."""
        return created_event(
            item_id=self.id, title=self.title, description=self.description, currency=self.currency,
            starting_price=self.starting_price, min_increment=self.min_increment,
            starts_ms=self.starts_ms, ends_ms=ends_ms, created_ms=self.created_ms,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ItemLive:
    """The fields every accepted bid changes (ends_ms is here because extensions will move it)."""

    current_price: int | None
    highest_bidder: str | None
    bid_count: int
    seq: int
    ends_ms: int


@dataclass(frozen=True, slots=True)
class ItemView:
    static: ItemStatic
    live: ItemLive

    def status(self, now_ms: int) -> ItemStatus:
        return status_at(now_ms, self.static.starts_ms, self.live.ends_ms)

    @property
    def min_next_bid(self) -> int:
        s = self.static
        return min_next_bid(s.starting_price, self.live.current_price, s.min_increment)


@dataclass(frozen=True, slots=True)
class AcceptedBid:
    bid_id: str
    seq: int
    amount: int
    placed_ms: int
    item: ItemView
