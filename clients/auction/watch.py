"""`auction watch ITEM`: the price and the last bids of an item, redrawn as they arrive.

On a terminal the screen is redrawn in place; piped, each change is one line, and with `--json` each
event is one JSON object per line. The stream reconnects and resumes by itself (`auction.live`).
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import asdict
from typing import TextIO

import orjson

from auction.live import BidPlaced, ItemCreated, LiveEvent, Reset, Snapshot, watch_item
from auction.models import Item
from auction.money import format_money

CLEAR = "\x1b[H\x1b[2J"


class WatchView:
    """What the screen shows: the item as of the last event and the latest bids."""

    def __init__(self, item_id: str, keep: int = 10) -> None:
        self.item_id = item_id
        self.item: Item | None = None
        self.bids: deque[BidPlaced] = deque(maxlen=keep)
        self.seq = 0

    def apply(self, event: LiveEvent) -> None:
        if isinstance(event, Snapshot):
            self.item, self.seq = event.item, event.seq
        elif isinstance(event, Reset):
            self.bids.clear()
        elif isinstance(event, BidPlaced):
            self.bids.appendleft(event)
            self.seq = event.seq
            if self.item is not None:
                self.item = self.item.model_copy(
                    update={
                        "current_price": event.current_price,
                        "highest_bidder": event.bidder,
                        "min_next_bid": event.min_next_bid,
                        "bid_count": self.item.bid_count + 1,
                        "seq": event.seq,
                    }
                )
        elif isinstance(event, ItemCreated):
            self.seq = event.seq

    def render(self) -> str:
        item = self.item
        if item is None:
            return f"{self.item_id}: waiting for the first snapshot..."
        price = (
            format_money(item.current_price, item.currency)
            if item.current_price is not None
            else "no bids yet"
        )
        lines = [
            f"{item.title} ({item.id})  [{item.status.value}]  seq {self.seq}",
            f"  price    {price}" + (f"  by {item.highest_bidder}" if item.highest_bidder else ""),
            f"  minimum  {format_money(item.min_next_bid, item.currency)}   bids {item.bid_count}",
            "  last bids:",
        ]
        lines += [
            f"    #{b.seq:<6} {b.placed_at:%H:%M:%S}  {b.bidder:<20} {format_money(b.amount, item.currency)}"
            for b in self.bids
        ]
        return "\n".join(lines)


async def watch(ws_url: str, item_id: str, *, as_json: bool, count: int, out: TextIO = sys.stdout) -> int:
    """Run the live view; returns after `count` bids (0: until interrupted)."""
    view = WatchView(item_id)
    seen = 0
    async with watch_item(ws_url, item_id) as stream:
        async for event in stream:
            view.apply(event)
            if as_json:
                out.write(orjson.dumps(_as_dict(event), default=str).decode() + "\n")
            elif out.isatty():
                out.write(CLEAR + view.render() + "\n")
            else:
                out.write(view.render().splitlines()[1].strip() + f"  (seq {view.seq})\n")
            out.flush()
            if isinstance(event, BidPlaced):
                seen += 1
                if count and seen >= count:
                    return 0
    return 0


def _as_dict(event: LiveEvent) -> dict[str, object]:
    if isinstance(event, Snapshot):
        return {"type": "snapshot", "seq": event.seq, "item": event.item.model_dump(mode="json")}
    if isinstance(event, Reset):
        return {"type": "reset"}
    return {"type": type(event).__name__, **asdict(event)}
