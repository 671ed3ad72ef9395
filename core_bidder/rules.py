"""Bid rules and item shapes, free of I/O so they can be tested without a server.

The Lua scripts in `core_bidder/lua/` apply the same rules inside Redis; the WATCH strategy applies
them from here. Tests hold both to the same outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Money is an integer count of minor units; 2^53 keeps it exact in Lua (doubles) and JSON.
MAX_AMOUNT = 2**53


class ItemStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"


def status_at(now_ms: int, starts_ms: int, ends_ms: int) -> ItemStatus:
    if now_ms < starts_ms:
        return ItemStatus.SCHEDULED
    if now_ms >= ends_ms:
        return ItemStatus.CLOSED
    return ItemStatus.OPEN


def min_next_bid(starting_price: int, current_price: int | None, min_increment: int) -> int:
    return starting_price if current_price is None else current_price + min_increment


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


def bid_id_for(item_id: str, seq: int) -> str:
    """Bid and event ids: unique because item ids never contain a dot and seq is per item."""
    return f"{item_id}.{seq}"
