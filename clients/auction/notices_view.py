"""`auction notices`: the token's bidder's notices (outbid, won, lost, extended), one line each as they come.

Piped or not, each notice is one line (`--json`: one JSON object). Prices are shown in the item's
currency once an `outbid` notice named it; before that in minor units. Runs until interrupted or
`--count` notices; a refused token is exit code 5 (see `auction.cli`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC
from typing import TextIO

import orjson

from auction.money import format_money
from auction.notices import AuctionExtended, Lost, Notice, OtherNotice, Outbid, Won, watch_notices


class NoticeView:
    """Lines for people; remembers each item's currency from its `outbid` notices."""

    def __init__(self) -> None:
        self._currency: dict[str, str] = {}

    def _money(self, item_id: str, amount: int | None) -> str:
        if amount is None:
            return "-"
        currency = self._currency.get(item_id)
        return format_money(amount, currency) if currency else f"{amount} (minor units)"

    def line(self, notice: Notice) -> str:
        if isinstance(notice, Outbid):
            if notice.currency:
                self._currency[notice.item_id] = notice.currency
            price = self._money(notice.item_id, notice.current_price)
            minimum = self._money(notice.item_id, notice.min_next_bid)
            return f"outbid on {notice.item_id}: now {price}; bid at least {minimum} to lead again"
        if isinstance(notice, Won):
            return f"won {notice.item_id} for {self._money(notice.item_id, notice.final_price)}"
        if isinstance(notice, Lost):
            if notice.final_price is None:
                return f"lost {notice.item_id}: no sale"
            price = self._money(notice.item_id, notice.final_price)
            return f"lost {notice.item_id}: sold to another bidder for {price}"
        if isinstance(notice, AuctionExtended):
            return (
                f"extended {notice.item_id}: now ends at {notice.ends_at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"
            )
        return f"{notice.type}: {dict(notice.data)}"


def as_json(notice: Notice) -> str:
    if isinstance(notice, OtherNotice):
        return orjson.dumps({"type": notice.type, **notice.data}).decode()
    return orjson.dumps({"type": type(notice).__name__, **asdict(notice)}, default=str).decode()


async def notices(ws_url: str, token: str, *, json_lines: bool, count: int, out: TextIO = sys.stdout) -> int:
    """Print notices until `count` of them (0: no limit); returns the exit code (0)."""
    view = NoticeView()
    seen = 0
    async with watch_notices(token, ws_url) as stream:
        async for notice in stream:
            out.write((as_json(notice) if json_lines else view.line(notice)) + "\n")
            out.flush()
            seen += 1
            if count and seen >= count:
                return 0
    return 0
