"""`auction watch ITEM`: the price, the countdown and the last bids of an item, redrawn as they arrive.

On a terminal the screen is redrawn in place (and once a second for the countdown); piped, each change
is one line, and with `--json` each event is one JSON object per line. The countdown runs on the
server's clock (`ItemStream.server_now`, from the frames' `server_time`), not the viewer's. Extensions
show as they happen ("extended to 12:00:05 (+2s)"); when the auction closes the result is shown ("sold to
alice for $12.34", "no sale") and the command exits 0. The stream reconnects and resumes by itself
(`auction.live`). Times are UTC.

The pure pieces (`format_countdown`, `format_extension`, `format_result`, `format_soft_close`, ...) and
the readers of an item's lifecycle and bid kinds' fields (`soft_close_of`, `result_of`, `reserve_met_of`,
`increments_of`, `buy_now_price_of`) are shared with `auction items show`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson

from auction.live import (
    BidPlaced,
    Closed,
    Extended,
    ItemCreated,
    ItemStream,
    LiveEvent,
    Reset,
    Snapshot,
    watch_item,
)
from auction.models import Item, Status
from auction.money import format_money

CLEAR = "\x1b[H\x1b[2J"


# -- an item's lifecycle fields ---------------------------------------------------------------------
# `Item` gains `soft_close`, `reserve_met`, `reserve_price` and `result` when the models are regenerated
# from the edge's OpenAPI document; these readers take them as model attributes or as plain mappings
# (raw JSON), and give None while the model does not have them.


@dataclass(frozen=True, slots=True)
class SoftCloseRules:
    """A bid in the last `window_seconds` moves the end to `extension_seconds` after it, to `max_ends_at`."""

    window_seconds: int
    extension_seconds: int
    max_ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuctionOutcome:
    """How an auction ended: the item's `result`, or a `Closed` event (which also has `bid_count`)."""

    outcome: str
    winner: str | None
    final_price: int | None
    closed_at: datetime | None
    bid_count: int | None = None

    @property
    def sold(self) -> bool:
        return self.outcome == "sold"

    @classmethod
    def of_event(cls, event: Closed) -> AuctionOutcome:
        return cls(event.outcome, event.winner, event.final_price, event.closed_at, event.bid_count)


def _member(value: object, name: str) -> Any:
    """`value.name` or `value[name]`; None when absent."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    found = getattr(value, name, None)
    if found is None:
        extra = getattr(value, "model_extra", None)  # a pydantic model that keeps unknown fields
        if isinstance(extra, Mapping):
            return extra.get(name)
    return found


def _as_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def soft_close_of(item: object) -> SoftCloseRules | None:
    """The item's soft close rules; None for a hard end (or a model without the field)."""
    rules = _member(item, "soft_close")
    window, extension = (
        _as_int(_member(rules, "window_seconds")),
        _as_int(_member(rules, "extension_seconds")),
    )
    if window is None or extension is None:
        return None
    return SoftCloseRules(window, extension, _as_time(_member(rules, "max_ends_at")))


def result_of(item: object) -> AuctionOutcome | None:
    """The item's recorded result; None until the close (or for a model without the field)."""
    result = _member(item, "result")
    outcome = _member(result, "outcome")
    if outcome is None:
        return None
    outcome = getattr(outcome, "value", outcome)  # a generated enum, or the plain string
    return AuctionOutcome(
        outcome=str(outcome),
        winner=_member(result, "winner"),
        final_price=_as_int(_member(result, "final_price")),
        closed_at=_as_time(_member(result, "closed_at")),
    )


def reserve_met_of(item: object) -> bool | None:
    """Whether the price has reached the reserve; None when the item has no reserve."""
    met = _member(item, "reserve_met")
    return met if isinstance(met, bool) else None


def reserve_price_of(item: object) -> int | None:
    """The reserve itself: only in answers to admins."""
    return _as_int(_member(item, "reserve_price"))


def increments_of(item: object) -> list[tuple[int, int]]:
    """The item's increment ladder as (from, increment) steps; [] without one."""
    steps = []
    for step in _member(item, "increments") or ():
        start = _member(step, "from") if isinstance(step, Mapping) else _member(step, "from_")
        increment = _member(step, "increment")
        if _as_int(start) is not None and _as_int(increment) is not None:
            steps.append((int(start), int(increment)))
    return steps


def buy_now_price_of(item: object) -> int | None:
    """The buy-now price, when the item offers one (whether it can still be used: its status and bids)."""
    return _as_int(_member(item, "buy_now_price"))


# -- formatting -------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """A span for people: `2` -> `2s`, `1.25` -> `1.2s`, `90` -> `1m30s`, `3600` -> `1h`, `86400` -> `1d`."""
    if abs(seconds - round(seconds)) >= 0.05 and abs(seconds) < 60:
        return f"{seconds:.1f}s"
    total = round(seconds)
    sign, total = ("-", -total) if total < 0 else ("", total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def format_countdown(remaining: timedelta) -> str:
    """`H:MM:SS` (with days in front when longer: `2d 03:04:05`); never negative. Whole seconds are
    rounded up, so `0:00:00` shows only once the time is reached."""
    total = max(0, math.ceil(remaining.total_seconds()))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_extension(event: Extended) -> str:
    """`extended to 12:00:05 (+2s)`."""
    ends = event.ends_at.astimezone(UTC)
    return f"extended to {ends:%H:%M:%S} (+{format_duration(event.extension.total_seconds())})"


def format_result(result: AuctionOutcome, currency: str) -> str:
    """`sold to alice for $12.34`, `no sale`; with the reason when the bid count is known."""
    if result.sold:
        if result.winner is not None and result.final_price is not None:
            return f"sold to {result.winner} for {format_money(result.final_price, currency, symbol=True)}"
        return "sold"
    if result.bid_count == 0:
        return "no sale (no bids)"
    if result.bid_count:
        return "no sale (reserve not met)"
    return "no sale"


def format_reserve(met: bool) -> str:
    return "reserve met" if met else "reserve not met"


def format_soft_close(rules: SoftCloseRules) -> str:
    """`a bid in the last 2m extends the end to 2m after it, until 2030-01-01 01:00:00Z at the latest`."""
    text = (
        f"a bid in the last {format_duration(rules.window_seconds)} extends the end "
        f"to {format_duration(rules.extension_seconds)} after it"
    )
    if rules.max_ends_at is None:
        return text + ", without a limit"
    return text + f", until {rules.max_ends_at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ} at the latest"


def format_time(value: datetime) -> str:
    return f"{value.astimezone(UTC):%H:%M:%S}"


class WatchView:
    """What the screen shows: the item as of the last event, its latest extensions and bids, the result."""

    def __init__(self, item_id: str, keep: int = 10) -> None:
        self.item_id = item_id
        self.item: Item | None = None
        self.bids: deque[BidPlaced] = deque(maxlen=keep)
        self.extensions: deque[Extended] = deque(maxlen=3)
        self.result: AuctionOutcome | None = None
        self.seq = 0

    @property
    def closed(self) -> bool:
        """The auction is over: its result is known, or the item says closed."""
        return self.result is not None or (self.item is not None and self.item.status == Status.closed)

    def apply(self, event: LiveEvent) -> None:
        if isinstance(event, Snapshot):
            self.item, self.seq = event.item, event.seq
            self.result = result_of(event.item)
        elif isinstance(event, Reset):
            self.bids.clear()
            self.extensions.clear()
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
        elif isinstance(event, Extended):
            self.extensions.appendleft(event)
            self.seq = event.seq
            if self.item is not None:
                self.item = self.item.model_copy(update={"ends_at": event.ends_at, "seq": event.seq})
        elif isinstance(event, Closed):
            self.result = AuctionOutcome.of_event(event)
            self.seq = event.seq
            if self.item is not None:
                self.item = self.item.model_copy(
                    update={"status": Status.closed, "bid_count": event.bid_count, "seq": event.seq}
                )
        elif isinstance(event, ItemCreated):
            self.seq = event.seq

    def phase(self, now: datetime) -> str:
        """`scheduled`, `open`, `closing` (the end has passed, the result is not in yet) or `closed`."""
        item = self.item
        if self.closed:
            return "closed"
        if item is None:
            return "waiting"
        if now < item.starts_at:
            return "scheduled"
        if now < item.ends_at:
            return "open"
        return "closing"

    def next_change(self, now: datetime) -> float:
        """Seconds from `now` until the countdown's text changes (at most 1)."""
        item = self.item
        target = None
        if item is not None:
            phase = self.phase(now)
            target = item.starts_at if phase == "scheduled" else item.ends_at if phase == "open" else None
        if target is None:
            return 1.0 - now.microsecond / 1_000_000
        remaining = (target - now).total_seconds()
        return (remaining % 1.0) or 1.0

    def countdown(self, now: datetime) -> str:
        """`ends in 0:00:12 (at 12:00:05)`, `opens in ...`, `ended at 12:00:05, closing...`, `closed ...`."""
        item = self.item
        if item is None:
            return ""
        phase = self.phase(now)
        if phase == "scheduled":
            return f"opens in {format_countdown(item.starts_at - now)} (at {format_time(item.starts_at)})"
        if phase == "open":
            return f"ends in {format_countdown(item.ends_at - now)} (at {format_time(item.ends_at)})"
        if phase == "closing":
            return f"ended at {format_time(item.ends_at)}, closing..."
        closed_at = self.result.closed_at if self.result is not None else None
        return f"closed at {format_time(closed_at or item.ends_at)}"

    def render(self, now: datetime | None = None) -> str:
        """The whole screen at `now` (the server's clock; default: the local one)."""
        item = self.item
        if item is None:
            return f"{self.item_id}: waiting for the first snapshot..."
        now = now or datetime.now(UTC)
        met = reserve_met_of(item)
        price = (
            format_money(item.current_price, item.currency)
            if item.current_price is not None
            else "no bids yet"
        )
        lines = [
            f"{item.title} ({item.id})  [{self.phase(now)}]  seq {self.seq}",
            f"  price    {price}"
            + (f"  by {item.highest_bidder}" if item.highest_bidder else "")
            + (f"  ({format_reserve(met)})" if met is not None and self.result is None else ""),
        ]
        if self.result is not None:
            lines.append(f"  result   {format_result(self.result, item.currency)}   bids {item.bid_count}")
        elif self.closed:
            lines.append(f"  closed   bids {item.bid_count}")
        else:
            lines.append(
                f"  minimum  {format_money(item.min_next_bid, item.currency)}   bids {item.bid_count}"
            )
        lines.append(f"  {self.countdown(now)}")
        rules = soft_close_of(item)
        if rules is not None and not self.closed:
            lines.append(f"  soft close: {format_soft_close(rules)}")
        lines += [f"  {format_extension(e)}" for e in self.extensions]
        lines.append("  last bids:")
        for b in self.bids:
            amount = format_money(b.amount, item.currency)
            automatic = "  (automatic, for a maximum)" if b.proxy else ""
            lines.append(f"    #{b.seq:<6} {format_time(b.placed_at)}  {b.bidder:<20} {amount}{automatic}")
        return "\n".join(lines)

    def line(self, event: LiveEvent, now: datetime | None = None) -> str:
        """One line for `event` when the output is not a terminal."""
        now = now or datetime.now(UTC)
        if isinstance(event, Extended):
            return f"{format_extension(event)}  (seq {event.seq})"
        item = self.item
        if isinstance(event, Closed):
            currency = item.currency if item is not None else ""
            return f"{format_result(AuctionOutcome.of_event(event), currency)}  (seq {event.seq})"
        if item is None:
            return self.render(now)
        screen = self.render(now).splitlines()
        if self.result is not None:  # a snapshot of an item closed before we came
            return f"{screen[2].strip()}  (seq {self.seq})"
        return f"{screen[1].strip()}  (seq {self.seq})  {self.countdown(now)}"


async def watch(ws_url: str, item_id: str, *, as_json: bool, count: int, out: TextIO = sys.stdout) -> int:
    """Run the live view; returns after `count` bids (0: no limit) or when the auction has closed."""
    view = WatchView(item_id)
    seen = 0
    tty = not as_json and out.isatty()
    async with watch_item(ws_url, item_id) as stream:
        drawn = asyncio.Event()
        ticker = asyncio.create_task(_tick(view, stream, out, drawn)) if tty else None
        try:
            async for event in stream:
                view.apply(event)
                now = stream.server_now()
                if as_json:
                    out.write(orjson.dumps(_as_dict(event), default=str).decode() + "\n")
                elif tty:
                    out.write(CLEAR + view.render(now) + "\n")
                    drawn.set()
                else:
                    out.write(view.line(event, now) + "\n")
                out.flush()
                if isinstance(event, BidPlaced):
                    seen += 1
                    if count and seen >= count:
                        return 0
        finally:
            if ticker is not None:
                ticker.cancel()
                # gather, not `suppress(CancelledError)`: a cancel of this task itself must go on
                await asyncio.gather(ticker, return_exceptions=True)
    return 0


async def _tick(view: WatchView, stream: ItemStream, out: TextIO, drawn: asyncio.Event) -> None:
    """Redraw the terminal each time the countdown's text changes (on the server's clock), between
    events; `drawn` is set when an event redrew the screen, which restarts the wait from there."""
    while True:
        drawn.clear()
        wait = view.next_change(stream.server_now()) + 0.005
        # `asyncio.timeout`, not `wait_for`: on 3.11 `wait_for` swallows a cancel that meets a set event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await drawn.wait()
            continue  # an event redrew: the time to the next change is measured again
        if view.item is not None and view.result is None:
            out.write(CLEAR + view.render(stream.server_now()) + "\n")
            out.flush()


def _as_dict(event: LiveEvent) -> dict[str, object]:
    if isinstance(event, Snapshot):
        return {
            "type": "snapshot",
            "seq": event.seq,
            "item": event.item.model_dump(mode="json", by_alias=True),
        }
    if isinstance(event, Reset):
        return {"type": "reset"}
    return {"type": type(event).__name__, **asdict(event)}
