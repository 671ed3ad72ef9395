"""Item rules every service reads, free of I/O: status from the window, id patterns, money bounds, bid ids.

The Lua scripts apply the same rules inside Redis; tests hold both to the same outcomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# Money is an integer count of minor units, at most 10^15 (ten trillion dollars in cents). Lua numbers
# are doubles, exact up to 2^53 (about 9.007 * 10^15): with every amount and increment at most 10^15,
# `price + increment` is at most 2 * 10^15 and so exact too, and no bid can ever compare equal to a
# higher minimum by rounding. JSON readers that use doubles (JavaScript) read every amount exactly.
MAX_AMOUNT = 10**15

# An item's times must fall in this window (Unix ms, UTC): 2000-01-01 inclusive to 2100-01-01
# exclusive. Every reader of the platform's times (RFC 3339 with four-digit years, Python's datetime,
# PostgreSQL's timestamptz, JavaScript's Date) handles them, and no real auction lies outside.
EARLIEST_TIME_MS = 946_684_800_000
LATEST_TIME_MS = 4_102_444_800_000
TIME_WINDOW_TEXT = "between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z"

# Text that the archive and every client can store and show: no C0/C1 control characters (NUL above
# all: PostgreSQL text refuses it) and no lone surrogates (not encodable as UTF-8). A description may
# keep tabs and line breaks; a title is one line.
_UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSAFE_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BIDDER_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000


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


@dataclass(frozen=True, slots=True)
class SoftCloseRule:
    """Anti-sniping: a bid within `window_ms` before the end moves it to at least placed + `extension_ms`,
    never past `max_ends_ms` (None: no cap). See `rules.extended_end`."""

    window_ms: int
    extension_ms: int
    max_ends_ms: int | None


def soft_close_of(
    window_ms: str | None, extension_ms: str | None, max_ends_ms: str | None
) -> SoftCloseRule | None:
    """The rule as the item hash stores it (`scw`, `scx`, `scm`; the cap "" for none); None for a hard end."""
    if not window_ms:
        return None
    return SoftCloseRule(int(window_ms), int(extension_ms or 0), int(max_ends_ms) if max_ends_ms else None)


# Soft close bounds (seconds), as the contract states them.
MIN_SOFT_CLOSE_SECONDS = 1
MAX_SOFT_CLOSE_SECONDS = 86_400


def extended_end(ends_ms: int, placed_ms: int, rule: SoftCloseRule | None) -> int:
    """The end after an accepted bid placed at `placed_ms`: moved only within the window, never back."""
    if rule is None or not ends_ms - rule.window_ms <= placed_ms < ends_ms:
        return ends_ms
    moved = max(ends_ms, placed_ms + rule.extension_ms)
    if rule.max_ends_ms is not None:
        moved = min(moved, rule.max_ends_ms)
    return max(moved, ends_ms)


def min_next_bid(starting_price: int, current_price: int | None, min_increment: int) -> int:
    return starting_price if current_price is None else current_price + min_increment


def time_in_window(ms: int) -> bool:
    return EARLIEST_TIME_MS <= ms < LATEST_TIME_MS


def safe_text(text: str, *, multiline: bool) -> bool:
    """True if `text` has no control characters (tabs and line breaks allowed when `multiline`)."""
    return (_UNSAFE_IN_TEXT if multiline else _UNSAFE_IN_LINE).search(text) is None


def is_item_id(item_id: str) -> bool:
    return ITEM_ID_PATTERN.fullmatch(item_id) is not None


def bid_id_for(item_id: str, seq: int) -> str:
    """Bid and event ids: unique because item ids never contain a dot and seq is per item."""
    return f"{item_id}.{seq}"
