"""The bid step's reply codes, decoded in one place.

`place_bid.lua` answers each bid with an array whose first element is one of these codes; the WATCH
writer builds the same arrays. `core_bidder.store` turns them into outcomes.

    {"A", seq, placed_ms, bid_count, ends_ms, item_seq}   accepted (ends_ms: the end in force after the
                                                  bid; item_seq: seq + 1 when the bid extended the auction)
    {"A", seq, placed_ms, bid_count, ends_ms, item_seq, price, leader, amount}   accepted by the proxy
                                                  path: the item's price and leader after the bid, and
                                                  the bid's own amount (the price when it placed none)
    {"L", min_next_bid}                          too low
    {"S"} not open yet   {"C"} closed   {"N"} no such item   {"R"} key reused with another amount

`buy_now.lua` answers {"A", seq, placed_ms, bid_count, closed_seq}, {"U"} (buy-now unavailable: no
buy-now price, or a bid came first), or {"S"}, {"C"}, {"N"} as above.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

Reply = list[str]


class ReplyCode(StrEnum):
    ACCEPTED = "A"
    TOO_LOW = "L"
    NOT_OPEN = "S"
    CLOSED = "C"
    KEY_REUSED = "R"
    NOT_FOUND = "N"
    BUY_NOW_UNAVAILABLE = "U"


class Accepted(NamedTuple):
    seq: int
    placed_ms: int
    bid_count: int
    ends_ms: int
    # The item's seq after this bid: the bid's own, or the `extended` event's right after it.
    item_seq: int
    # From the proxy path only (None: a plain bid, which leads at its own amount).
    price: int | None = None
    leader: str | None = None
    amount: int | None = None


def accepted_reply(
    seq: int,
    placed_ms: int,
    bid_count: int,
    ends_ms: int | str,
    item_seq: int | None = None,
    proxy_path: tuple[int, str, int] | None = None,
) -> Reply:
    """`proxy_path`: (price, leader, amount) for a reply of the proxy path; None for the plain one."""
    reply = [
        ReplyCode.ACCEPTED.value, str(seq), str(placed_ms), str(bid_count), str(ends_ms),
        str(seq if item_seq is None else item_seq),
    ]  # fmt: skip
    if proxy_path is not None:
        reply += (str(proxy_path[0]), proxy_path[1], str(proxy_path[2]))
    return reply


def too_low_reply(min_next_bid: int) -> Reply:
    return [ReplyCode.TOO_LOW.value, str(min_next_bid)]


def code_of(reply: Reply) -> ReplyCode:
    """The reply's code; ValueError for anything the bid step never answers."""
    return ReplyCode(reply[0])


def accepted_of(reply: Reply) -> Accepted:
    """The accepted reply's values; a stored reply from before soft close has no item_seq (= seq)."""
    seq, placed_ms, bid_count, ends_ms = (int(x) for x in reply[1:5])
    item_seq = int(reply[5]) if len(reply) > 5 else seq
    if len(reply) > 8:
        return Accepted(seq, placed_ms, bid_count, ends_ms, item_seq, int(reply[6]), reply[7], int(reply[8]))
    return Accepted(seq, placed_ms, bid_count, ends_ms, item_seq)
