"""The bid step's reply codes, decoded in one place.

`place_bid.lua` answers each bid with an array whose first element is one of these codes; the WATCH
writer builds the same arrays. `core_bidder.store` turns them into outcomes.

    {"A", seq, placed_ms, bid_count, ends_ms, item_seq}   accepted (ends_ms: the end in force after the
                                                  bid; item_seq: seq + 1 when the bid extended the auction)
    {"L", min_next_bid}                          too low
    {"S"} not open yet   {"C"} closed   {"N"} no such item   {"R"} key reused with another amount
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


class Accepted(NamedTuple):
    seq: int
    placed_ms: int
    bid_count: int
    ends_ms: int
    # The item's seq after this bid: the bid's own, or the `extended` event's right after it.
    item_seq: int


def accepted_reply(
    seq: int, placed_ms: int, bid_count: int, ends_ms: int | str, item_seq: int | None = None
) -> Reply:
    return [
        ReplyCode.ACCEPTED.value, str(seq), str(placed_ms), str(bid_count), str(ends_ms),
        str(seq if item_seq is None else item_seq),
    ]  # fmt: skip


def too_low_reply(min_next_bid: int) -> Reply:
    return [ReplyCode.TOO_LOW.value, str(min_next_bid)]


def code_of(reply: Reply) -> ReplyCode:
    """The reply's code; ValueError for anything the bid step never answers."""
    return ReplyCode(reply[0])


def accepted_of(reply: Reply) -> Accepted:
    """The accepted reply's values; a stored reply from before soft close has no item_seq (= seq)."""
    seq, placed_ms, bid_count, ends_ms = (int(x) for x in reply[1:5])
    item_seq = int(reply[5]) if len(reply) > 5 else seq
    return Accepted(seq, placed_ms, bid_count, ends_ms, item_seq)
