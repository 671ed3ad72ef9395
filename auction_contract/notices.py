"""The per-bidder notice JSON (`/ws/me`), built by the relay and forwarded as is by the fan-out.

Every notice is an object `{"type", "item_id", "seq", ...}`: `seq` is the item event that caused it
(the bid, the extension, the close), so a client can drop a repeat. Notices are at-least-once: the relay
sends them after JetStream stored the event and before it removes the outbox entry, so a relay that
dies in between sends them again. A repeat is always the same notice to the same bidder, never a wrong
one. The fan-out appends `server_time`, as to every frame it sends.
"""

from __future__ import annotations

from enum import StrEnum

import orjson


class NoticeKind(StrEnum):
    OUTBID = "outbid"
    WON = "won"
    LOST = "lost"
    EXTENDED = "extended"


def outbid_notice(item_id: str, seq: int, current_price: int, min_next_bid: int, currency: str) -> bytes:
    """To the previous leader when another bidder takes the lead; `currency` so the price can be shown."""
    return orjson.dumps(
        {
            "type": NoticeKind.OUTBID.value,
            "item_id": item_id,
            "seq": seq,
            "current_price": current_price,
            "min_next_bid": min_next_bid,
            "currency": currency,
        }
    )


def result_notice(kind: NoticeKind, item_id: str, seq: int, final_price: int | None) -> bytes:
    """`won` to the winner, `lost` to every other bidder of the item (`final_price` null without a sale)."""
    if kind not in (NoticeKind.WON, NoticeKind.LOST):
        raise ValueError(f"{kind} is not a result")
    return orjson.dumps({"type": kind.value, "item_id": item_id, "seq": seq, "final_price": final_price})


def extended_notice(item_id: str, seq: int, ends_at: str) -> bytes:
    """To every bidder of the item when a late bid moved its end (`ends_at` RFC 3339, the new end)."""
    return orjson.dumps(
        {"type": NoticeKind.EXTENDED.value, "item_id": item_id, "seq": seq, "ends_at": ends_at}
    )
