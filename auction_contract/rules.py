"""Item rules every service reads, free of I/O: status from the window, id patterns, money bounds, bid ids.

The Lua scripts apply the same rules inside Redis; tests hold both to the same outcomes.
"""

from __future__ import annotations

import re
from enum import StrEnum

# Money is an integer count of minor units; 2^53 keeps it exact in Lua (doubles) and JSON.
MAX_AMOUNT = 2**53

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


def min_next_bid(starting_price: int, current_price: int | None, min_increment: int) -> int:
    return starting_price if current_price is None else current_price + min_increment


def is_item_id(item_id: str) -> bool:
    return ITEM_ID_PATTERN.fullmatch(item_id) is not None


def bid_id_for(item_id: str, seq: int) -> str:
    """Bid and event ids: unique because item ids never contain a dot and seq is per item."""
    return f"{item_id}.{seq}"
