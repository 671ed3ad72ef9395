"""The bid kinds' rules (proxy bids, the increment ladder, buy-now) as one pure function each, no I/O.

This is the reference model the two write strategies are held to: `place_bid.lua` implements the same
steps in Redis, the WATCH writer calls `place` and `buy_now` directly, and the property test compares
all three. The rules are the contract's ("Bid kinds"):

- A bid names an `amount` (bid exactly this), a `max_amount` (a proxy: the platform bids for you up to
  it) or both. The leader is the bidder with the highest maximum, the earlier on a tie. The price is the
  second-highest maximum plus the increment at that price, capped at the leader's maximum, never below
  the starting price, and at least the reserve once the leader's maximum covers it.
- Every price change is a bid event; an event whose amount the bidder did not name is `proxy`.

Why the state is so small: after every step each other bidder's maximum is at most the price (they
were beaten), so the leader, their maximum and the price are all a new bid needs. `leader_max` is None
when the leader's maximum is the price itself (a plain leader): then the plain path of the Lua step can
run exactly as it did before proxy bids existed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from auction_contract.rules import MAX_AMOUNT

MAX_LADDER_STEPS = 32

Ladder = tuple[tuple[int, int], ...]
"""(from, increment) steps: the first from 0, `from` strictly rising."""


def ladder_error(steps: Ladder) -> str | None:
    """Why `steps` is not a valid ladder, or None; the message names the contract's rule."""
    if not 1 <= len(steps) <= MAX_LADDER_STEPS:
        return f"increments must have 1..{MAX_LADDER_STEPS} steps"
    if steps[0][0] != 0:
        return "increments must start at from = 0"
    previous = -1
    for start, increment in steps:
        if not previous < start <= MAX_AMOUNT:
            return "increments' from must be strictly rising and at most the money bound"
        if not 0 < increment <= MAX_AMOUNT:
            return f"every increment must be between 1 and {MAX_AMOUNT}"
        previous = start
    return None


def ladder_text(steps: Ladder) -> str:
    """The ladder as the item hash stores it (`from:increment,...`), which `place_bid.lua` parses."""
    return ",".join(f"{start}:{increment}" for start, increment in steps)


def parse_ladder(text: str | None, min_increment: int) -> Ladder:
    """The stored ladder; an item without one has `min_increment` at every price."""
    if not text:
        return ((0, min_increment),)
    return tuple((int(a), int(b)) for a, b in (step.split(":") for step in text.split(",")))


def increment_at(ladder: Ladder, price: int) -> int:
    """The increment of the step with the greatest `from <= price`."""
    found = ladder[0][1]
    for start, increment in ladder:
        if start > price:
            break
        found = increment
    return found


@dataclass(frozen=True, slots=True)
class Book:
    """An item's bidding state: what the rules read and write (the Redis hash holds the same)."""

    starting_price: int
    ladder: Ladder
    reserve: int | None = None
    buy_now_price: int | None = None
    price: int | None = None
    leader: str | None = None
    # The leader's maximum when above the price (a proxy with room left); None otherwise.
    leader_max: int | None = None
    bid_count: int = 0

    @property
    def min_next_bid(self) -> int:
        if self.price is None:
            return self.starting_price
        return self.price + increment_at(self.ladder, self.price)

    @property
    def top(self) -> int:
        """The leader's maximum (the price for a plain leader)."""
        return self.leader_max if self.leader_max is not None else (self.price or 0)


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """One `bid` event: who leads at what price after it."""

    bidder: str
    amount: int
    proxy: bool
    min_next_bid: int
    # AUDIT ONLY (the outbox and the archive, never an event or answer): the maximum the event's bidder,
    # the leader right after it, leads with when above its amount; None otherwise.
    leader_max: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one bid: `too_low` (the minimum to send) or accepted, with the events it caused.

    `own` is the index in `events` of the bid's own event (None: it caused none of its own, a raise or a
    maximum beaten at once); `leading` whether the bidder leads afterwards.
    """

    book: Book
    events: tuple[PriceEvent, ...] = ()
    too_low: int | None = None
    own: int | None = None
    leading: bool = False


def place(book: Book, bidder: str, amount: int | None, max_amount: int | None) -> Decision:
    """Apply one bid to an open item (the caller checked the window); `amount` or `max_amount` or both,
    `max_amount >= amount` (validation refuses the rest)."""
    top = max_amount if max_amount is not None else amount
    assert top is not None
    needed = book.min_next_bid
    if book.leader == bidder and amount is None:
        # The leader raising their own maximum: above it, or it would be no raise at all.
        needed = max(needed, book.top + 1)
    if (amount if amount is not None else top) < needed:
        return Decision(book, too_low=needed)
    if book.leader is None:
        price = book.starting_price if amount is None else amount
        return _settle(book, bidder, top, _with_reserve(book, price, top), amount)
    if book.leader == bidder:
        if amount is None:  # a raise: the price stays (unless the reserve is now covered)
            price = _with_reserve(book, book.price or 0, top)
            if price == book.price:
                return Decision(_leading(book, bidder, price, top), leading=True)
            return _settle(book, bidder, top, price, None)
        top = max(top, book.top)
        return _settle(book, bidder, top, _with_reserve(book, amount, top), amount)
    if top > book.top:  # the challenger takes the lead
        price = max(amount or 0, min(top, book.top + increment_at(book.ladder, book.top)))
        return _settle(book, bidder, top, _with_reserve(book, price, top), amount)
    # The leader defends (an equal maximum: the earlier leads); the challenger's named amount first.
    defender, defender_top = book.leader, book.top
    first: tuple[PriceEvent, ...] = ()
    if amount is not None:
        book = replace(book, price=amount, bid_count=book.bid_count + 1)
        first = (PriceEvent(bidder, amount, False, book.min_next_bid, top if top > amount else None),)
    price = _with_reserve(book, min(defender_top, top + increment_at(book.ladder, top)), defender_top)
    after = _leading(book, defender, price, defender_top, book.bid_count + 1)
    events = (*first, PriceEvent(defender, price, True, after.min_next_bid, after.leader_max))
    return Decision(after, events, own=0 if first else None, leading=False)


def buy_now(book: Book) -> bool:
    """Whether buy-now is still offered: the item has a buy-now price and no bid yet."""
    return book.buy_now_price is not None and book.bid_count == 0


def _with_reserve(book: Book, price: int, top: int) -> int:
    """The price, raised to the reserve as soon as the leader's maximum covers it."""
    if book.reserve is not None and price < book.reserve <= top:
        return book.reserve
    return price


def _leading(book: Book, leader: str, price: int, top: int, bid_count: int | None = None) -> Book:
    return replace(
        book, price=price, leader=leader, leader_max=top if top > price else None,
        bid_count=book.bid_count if bid_count is None else bid_count,
    )  # fmt: skip


def _settle(book: Book, bidder: str, top: int, price: int, amount: int | None) -> Decision:
    """`bidder` leads at `price` with maximum `top`: one event, `proxy` unless they named that amount."""
    after = _leading(book, bidder, price, top, book.bid_count + 1)
    event = PriceEvent(bidder, price, price != amount, after.min_next_bid, after.leader_max)
    return Decision(after, (event,), own=0, leading=True)


__all__ = [
    "MAX_LADDER_STEPS",
    "Book",
    "Decision",
    "Ladder",
    "PriceEvent",
    "buy_now",
    "increment_at",
    "ladder_error",
    "ladder_text",
    "parse_ladder",
    "place",
]
