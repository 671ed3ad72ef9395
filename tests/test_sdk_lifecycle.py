"""The SDK and CLI side of the auction lifecycle (issue 13), without the platform's servers.

The decoder types `extended` and `closed`, reads `server_time` into a clock offset and marks the stream
finished at the close; `ItemStream` (against a tiny in-process WebSocket server that plays the fan-out's
part) stops after `Closed` without reconnecting; the `auction watch` and `auction items show` renderers
show the corrected countdown, extensions, the result and the lifecycle fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from auction import Closed as ExportedClosed
from auction import Extended as ExportedExtended
from auction.cli import describe_item
from auction.live import (
    BidPlaced,
    Closed,
    Extended,
    OtherEvent,
    Snapshot,
    StreamDecoder,
    _Gap,
    watch_item,
)
from auction.models import Item, Status
from auction.money import format_money
from auction.watch import (
    CLEAR,
    AuctionOutcome,
    SoftCloseRules,
    WatchView,
    _as_dict,
    format_countdown,
    format_duration,
    format_extension,
    format_result,
    format_soft_close,
    reserve_met_of,
    result_of,
    soft_close_of,
    watch,
)

T0 = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)

ITEM: dict[str, Any] = {
    "id": "it1", "title": "Lamp", "description": "", "currency": "USD", "status": "open",
    "starting_price": 100, "min_increment": 10, "current_price": None, "highest_bidder": None,
    "bid_count": 0, "min_next_bid": 100, "starts_at": "2026-12-03T08:00:00.000Z",
    "ends_at": "2026-12-03T09:00:30.000Z", "seq": 1,
}  # fmt: skip

SOLD = {"outcome": "sold", "winner": "alice", "final_price": 1234, "closed_at": "2026-12-03T09:00:31.200Z"}


def stamp(moment: datetime) -> str:
    """RFC 3339 with milliseconds and Z, as the platform writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def frame(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def bid(seq: int, amount: int, bidder: str = "alice") -> dict[str, Any]:
    return {
        "type": "bid", "item_id": "it1", "seq": seq, "bid_id": f"it1.{seq}", "bidder": bidder,
        "amount": amount, "placed_at": "2026-12-03T09:00:29.500Z", "current_price": amount,
        "min_next_bid": amount + 10,
    }  # fmt: skip


def extended(
    seq: int, ends: str = "2026-12-03T09:00:32.000Z", previous: str = "2026-12-03T09:00:30.000Z"
) -> dict[str, Any]:
    return {"type": "extended", "item_id": "it1", "seq": seq, "ends_at": ends, "previous_ends_at": previous}


def closed(
    seq: int, outcome: str = "sold", winner: str | None = "alice", price: int | None = 120
) -> dict[str, Any]:
    return {
        "type": "closed", "item_id": "it1", "seq": seq, "outcome": outcome, "winner": winner,
        "final_price": price, "bid_count": 2, "closed_at": "2026-12-03T09:00:32.400Z",
    }  # fmt: skip


def snapshot(seq: int = 1, **item: Any) -> dict[str, Any]:
    return {"type": "snapshot", "item": {**ITEM, "seq": seq, **item}, "seq": seq}


def item(**changes: Any) -> Item:
    """An `Item`; lifecycle fields go in unvalidated (as raw JSON), which the readers take either way."""
    base = Item.model_validate(ITEM)
    return base.model_copy(update=changes) if changes else base


# -- the decoder ------------------------------------------------------------------------------------


def finished(d: StreamDecoder) -> bool:
    return d.finished  # through a call: mypy would keep an earlier `assert not d.finished` narrowing


def test_decoder_types_extended_and_closed() -> None:
    """Both new kinds come out typed, in order, from a batch; `closed` marks the stream finished."""
    d = StreamDecoder(since=1)
    batch = {"type": "batch", "events": [bid(2, 110), extended(3), bid(4, 120, "bob")]}
    events = list(d.feed(frame(batch)))
    assert [type(e) for e in events] == [BidPlaced, Extended, BidPlaced]
    ext = events[1]
    assert ext == Extended(
        "it1", 3, datetime(2026, 12, 3, 9, 0, 32, tzinfo=UTC), datetime(2026, 12, 3, 9, 0, 30, tzinfo=UTC)
    )
    assert isinstance(ext, Extended)
    assert ext.extension == timedelta(seconds=2)
    assert not finished(d)
    (end,) = d.feed(frame(closed(5)))
    assert end == Closed(
        "it1", 5, "sold", "alice", 120, 2, datetime(2026, 12, 3, 9, 0, 32, 400000, tzinfo=UTC)
    )
    assert isinstance(end, Closed)
    assert end.sold
    assert finished(d)
    assert d.last_seq == 5
    assert (ExportedClosed, ExportedExtended) == (Closed, Extended)  # the package exports them


def test_decoder_no_sale_and_seq_rules_apply_to_the_new_kinds() -> None:
    """A no-sale close has null winner and price; repeats are dropped and jumps detected as for bids."""
    d = StreamDecoder(since=2)
    assert list(d.feed(frame(extended(2)))) == []  # already seen
    assert d.duplicates == 1
    with pytest.raises(_Gap):
        list(d.feed(frame(closed(5))))
    assert not d.finished  # the close was not yielded: the resume will bring it
    (end,) = d.feed(frame(closed(3, "no_sale", None, None)))
    assert isinstance(end, Closed)
    assert (end.outcome, end.winner, end.final_price, end.sold) == ("no_sale", None, None, False)
    assert finished(d)


def test_decoder_keeps_a_malformed_close_untyped_but_still_finishes() -> None:
    """A `closed` that does not fit the model (missing fields, unknown outcome) is an `OtherEvent`,
    without `server_time` in its fields; it is still the item's last event."""
    d = StreamDecoder(since=3)
    message = {"type": "closed", "item_id": "it1", "seq": 4, "final_price": 30, "server_time": stamp(T0)}
    (other,) = d.feed(frame(message))
    assert other == OtherEvent("closed", "it1", 4, {"final_price": 30})
    assert finished(d)
    (odd,) = StreamDecoder(since=3).feed(frame({**closed(4), "outcome": "withdrawn"}))
    assert isinstance(odd, OtherEvent)
    assert odd.fields["outcome"] == "withdrawn"
    (future,) = StreamDecoder(since=3).feed(frame({"type": "paused", "item_id": "it1", "seq": 4}))
    assert future == OtherEvent("paused", "it1", 4, {})


def test_decoder_reads_server_time_from_every_kind_of_frame() -> None:
    """Snapshot, batch and single-event frames all carry `server_time`: the offset is server minus the
    local receive time, from the latest frame; frames without it (or with a bad one) keep the estimate."""
    d = StreamDecoder()
    local = T0.timestamp()
    (snap,) = d.feed(frame({**snapshot(), "server_time": stamp(T0 + timedelta(seconds=5))}), local)
    assert isinstance(snap, Snapshot)
    assert d.server_offset == pytest.approx(5.0)
    assert d.server_time == T0 + timedelta(seconds=5)
    batch = {"type": "batch", "events": [bid(2, 110)], "server_time": stamp(T0 - timedelta(seconds=2))}
    assert len(list(d.feed(frame(batch), local + 1.0))) == 1
    assert d.server_offset == pytest.approx(-3.0)
    (single,) = d.feed(frame({**bid(3, 120), "server_time": stamp(T0 + timedelta(milliseconds=250))}), local)
    assert isinstance(single, BidPlaced)
    assert d.server_offset == pytest.approx(0.25)
    assert len(list(d.feed(frame(bid(4, 130)), local + 100))) == 1  # an older server: no server_time
    assert len(list(d.feed(frame({**bid(5, 140), "server_time": "soon"}), local + 100))) == 1
    assert d.server_offset == pytest.approx(0.25)
    assert d.server_now(T0) == T0 + timedelta(milliseconds=250)
    assert StreamDecoder().server_now(T0) == T0  # no estimate yet: the local clock


def test_decoder_finishes_on_a_snapshot_of_a_closed_item() -> None:
    """A viewer arriving after the close gets a snapshot with the result: nothing will follow it."""
    d = StreamDecoder()
    (open_snap,) = d.feed(frame(snapshot(status="closed", result=None)))  # ended, close step not run yet
    assert isinstance(open_snap, Snapshot)
    assert not finished(d)
    d = StreamDecoder()
    (snap,) = d.feed(frame(snapshot(7, status="closed", result=SOLD)))
    assert isinstance(snap, Snapshot)
    assert finished(d)


# -- the stream against a fake fan-out --------------------------------------------------------------

Script = Callable[[ServerConnection, int], Any]


class FakeFanout:
    """A WebSocket server on a free port: each connection's request path is recorded, then `script`
    plays (with the connection's number, from 0)."""

    def __init__(self, script: Script) -> None:
        self.paths: list[str] = []
        self._script = script
        self.url = ""

    async def _handle(self, ws: ServerConnection) -> None:
        number = len(self.paths)
        self.paths.append(ws.request.path if ws.request is not None else "")
        await self._script(ws, number)


@contextlib.asynccontextmanager
async def fake_fanout(script: Script) -> AsyncIterator[FakeFanout]:
    fake = FakeFanout(script)
    async with serve(fake._handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}"
        yield fake


def timed(message: dict[str, Any], offset: float = 0.0) -> bytes:
    now = datetime.now(UTC) + timedelta(seconds=offset)
    return frame({**message, "server_time": stamp(now)})


async def hold_open(ws: ServerConnection) -> None:
    """Keep the connection until the client leaves, as a fan-out does after the last event."""
    await ws.wait_closed()


async def test_stream_ends_after_closed_without_reconnecting() -> None:
    """A dropped connection is resumed with `since`; after `Closed` the iteration ends although the
    server keeps the connection open, and no further connection is made."""

    async def script(ws: ServerConnection, number: int) -> None:
        if number == 0:
            await ws.send(timed(snapshot()))
            await ws.send(timed(bid(2, 110)))
            await ws.close(1012)  # a restart: the client must come back with since=2
            return
        await ws.send(timed({"type": "batch", "events": [extended(3), closed(4)]}, offset=60.0))
        await hold_open(ws)

    async with fake_fanout(script) as fake:
        seen: list[object] = []
        async with watch_item(fake.url, "it1", backoff_initial=0.01) as stream:
            async with asyncio.timeout(10):
                seen.extend([event async for event in stream])
            assert [type(e) for e in seen] == [Snapshot, BidPlaced, Extended, Closed]
            assert stream.finished
            assert stream.connects == 2
            assert stream.server_offset == pytest.approx(60.0, abs=5.0)
            assert stream.server_now() - datetime.now(UTC) > timedelta(seconds=55)
            assert [e async for e in stream] == []  # over for good: a new iteration yields nothing
        await asyncio.sleep(0.1)
        assert fake.paths == ["/ws/items/it1", "/ws/items/it1?since=2"]


async def test_stream_ends_after_a_snapshot_of_a_closed_item() -> None:
    async def script(ws: ServerConnection, number: int) -> None:
        await ws.send(timed(snapshot(9, status="closed", result=SOLD, current_price=1234)))
        await hold_open(ws)

    async with fake_fanout(script) as fake:
        async with watch_item(fake.url, "it1") as stream, asyncio.timeout(10):
            events = [event async for event in stream]
        assert [type(e) for e in events] == [Snapshot]
        assert fake.paths == ["/ws/items/it1"]


async def test_watch_command_prints_extension_and_result_then_returns_0() -> None:
    """`auction watch`, piped: one line per change, the extension as it happens, the result, exit 0."""

    async def script(ws: ServerConnection, number: int) -> None:
        ends = datetime.now(UTC) + timedelta(seconds=30)
        await ws.send(timed(snapshot(ends_at=stamp(ends))))
        await ws.send(timed(bid(2, 110)))
        await ws.send(timed(extended(3, "2026-12-03T09:00:32.000Z", "2026-12-03T09:00:30.000Z")))
        await ws.send(timed(closed(4, price=110)))
        await hold_open(ws)

    async with fake_fanout(script) as fake:
        out = io.StringIO()
        async with asyncio.timeout(10):
            assert await watch(fake.url, "it1", as_json=False, count=0, out=out) == 0
        lines = out.getvalue().splitlines()
        assert len(lines) == 4
        assert "no bids yet" in lines[0]
        assert "ends in 0:00:3" in lines[0]  # 30 s, or 29.x rounded up
        assert lines[1].startswith("price    1.10 USD  by alice  (seq 2)")
        assert lines[2] == "extended to 09:00:32 (+2s)  (seq 3)"
        assert lines[3] == "sold to alice for $1.10  (seq 4)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_watch_on_a_terminal_ticks_the_countdown_on_the_servers_clock() -> None:
    """The viewer's clock is an hour behind: the countdown still shows the server's remaining time,
    and it is redrawn between events."""
    skew = 3600.0

    async def script(ws: ServerConnection, number: int) -> None:
        ends = datetime.now(UTC) + timedelta(seconds=skew + 20)
        await ws.send(timed(snapshot(ends_at=stamp(ends)), offset=skew))
        await asyncio.sleep(1.3)
        await ws.send(timed(closed(2, "no_sale", None, None), offset=skew))
        await hold_open(ws)

    async with fake_fanout(script) as fake:
        out = Terminal()
        async with asyncio.timeout(10):
            assert await watch(fake.url, "it1", as_json=False, count=0, out=out) == 0
        screens = out.getvalue().split(CLEAR)[1:]
        assert len(screens) >= 3  # the snapshot, at least one tick, the close
        assert "ends in 0:00:2" in screens[0]  # 20 s on the server's clock, not 1:00:20
        assert "ends in 0:00:1" in screens[1]
        assert "no sale (reserve not met)" in screens[-1]
        assert "[closed]" in screens[-1]


# -- rendering --------------------------------------------------------------------------------------


def test_money_with_a_symbol() -> None:
    assert format_money(1234, "USD", symbol=True) == "$12.34"
    assert format_money(-1234, "EUR", symbol=True) == "-€12.34"
    assert format_money(1234, "JPY", symbol=True) == "¥1,234"
    assert format_money(1234, "CHF", symbol=True) == "12.34 CHF"
    assert format_money(1234, "USD") == "12.34 USD"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (0.2, "0:00:01"), (5, "0:00:05"), (3723, "1:02:03"), (-4, "0:00:00"),
     (2 * 86400 + 3 * 3600 + 4 * 60 + 5, "2d 03:04:05")],
)  # fmt: skip
def test_countdown(seconds: float, text: str) -> None:
    assert format_countdown(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2, "2s"), (1.25, "1.2s"), (1.999, "2s"), (90, "1m30s"), (900, "15m"), (3600, "1h"), (86400, "1d")],
)
def test_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_extension_and_result_lines() -> None:
    assert format_extension(Extended("it1", 3, T0 + timedelta(seconds=5), T0 + timedelta(seconds=3))) == (
        "extended to 09:00:05 (+2s)"
    )
    late = Extended("it1", 3, T0 + timedelta(seconds=1, milliseconds=400), T0)
    assert format_extension(late) == "extended to 09:00:01 (+1.4s)"
    assert format_result(AuctionOutcome("sold", "alice", 1234, T0), "USD") == "sold to alice for $12.34"
    assert format_result(AuctionOutcome("no_sale", None, None, T0), "USD") == "no sale"
    assert format_result(AuctionOutcome("no_sale", None, None, T0, bid_count=0), "USD") == "no sale (no bids)"
    assert format_result(AuctionOutcome("no_sale", None, None, T0, 3), "USD") == "no sale (reserve not met)"
    rules = SoftCloseRules(120, 120, None)
    assert format_soft_close(rules) == (
        "a bid in the last 2m extends the end to 2m after it, without a limit"
    )
    capped = SoftCloseRules(2, 2, T0 + timedelta(seconds=10))
    assert format_soft_close(capped).endswith("until 2026-12-03 09:00:10Z at the latest")


def test_lifecycle_readers_take_attributes_or_raw_json() -> None:
    """Before the models are regenerated the fields are absent; after, they are nested models; raw JSON
    mappings work too."""
    assert (soft_close_of(item()), result_of(item()), reserve_met_of(item())) == (None, None, None)
    rules = {"window_seconds": 2, "extension_seconds": 3, "max_ends_at": "2026-12-03T09:10:00Z"}
    raw = item(soft_close=rules, result=SOLD, reserve_met=True)
    assert soft_close_of(raw) == SoftCloseRules(2, 3, datetime(2026, 12, 3, 9, 10, tzinfo=UTC))
    assert result_of(raw) == AuctionOutcome(
        "sold", "alice", 1234, datetime(2026, 12, 3, 9, 0, 31, 200000, UTC)
    )
    assert reserve_met_of(raw) is True
    generated = SimpleNamespace(
        soft_close=SimpleNamespace(window_seconds=60, extension_seconds=60, max_ends_at=None),
        result=SimpleNamespace(outcome=SimpleNamespace(value="no_sale"), winner=None, final_price=None,
                               closed_at=T0),
        reserve_met=False,
    )  # fmt: skip
    assert soft_close_of(generated) == SoftCloseRules(60, 60, None)
    assert result_of(generated) == AuctionOutcome("no_sale", None, None, T0)
    assert reserve_met_of(generated) is False


def test_items_show_open_item_with_rules_and_reserve() -> None:
    text = describe_item(
        item(current_price=150, highest_bidder="bob", bid_count=2, min_next_bid=160, reserve_met=False,
             soft_close={"window_seconds": 120, "extension_seconds": 60, "max_ends_at": None})
    )  # fmt: skip
    assert "current price 1.50 USD by bob (reserve not met)" in text
    assert "next minimum  1.60 USD" in text
    assert "soft close    a bid in the last 2m extends the end to 1m after it, without a limit" in text
    assert "result" not in text
    plain = describe_item(item())
    assert "reserve" not in plain
    assert "soft close" not in plain
    assert "next minimum  1.00 USD" in plain


def test_items_show_closed_item_has_result_and_no_next_minimum() -> None:
    text = describe_item(
        item(status=Status.closed, current_price=1234, highest_bidder="alice", bid_count=5, min_next_bid=1244,
             result=SOLD, reserve_met=True, reserve_price=1000)
    )  # fmt: skip
    assert "result        sold to alice for $12.34 at 2026-12-03 09:00:31Z" in text
    assert "next minimum" not in text
    assert "(reserve met)" in text
    assert "reserve       10.00 USD" in text  # an admin's answer carries the reserve itself
    no_sale = describe_item(
        item(status=Status.closed, bid_count=0, result={**SOLD, "outcome": "no_sale", "winner": None,
                                                   "final_price": None})
    )  # fmt: skip
    assert "result        no sale at" in no_sale
    assert "next minimum" not in no_sale
    ended = describe_item(item(status=Status.closed))  # ended, the close step not run yet
    assert "next minimum" not in ended
    assert "not recorded yet" in ended


def test_watch_view_follows_extension_and_close() -> None:
    """The countdown runs to the effective end at the given (server) time; an extension moves it and is
    listed; the close replaces the minimum with the result."""
    view = WatchView("it1")
    view.apply(Snapshot(item(soft_close={"window_seconds": 2, "extension_seconds": 2, "max_ends_at": None},
                             reserve_met=False), 1))  # fmt: skip
    screen = view.render(T0 + timedelta(seconds=10))
    assert "[open]" in screen
    assert "ends in 0:00:20 (at 09:00:30)" in screen
    assert "minimum  1.00 USD   bids 0" in screen
    assert "soft close: a bid in the last 2s extends the end to 2s after it" in screen
    assert "(reserve not met)" in screen
    view.apply(BidPlaced("it1", 2, "it1.2", "alice", 110, T0 + timedelta(seconds=29), 110, 120))
    view.apply(Extended("it1", 3, T0 + timedelta(seconds=31), T0 + timedelta(seconds=30)))
    screen = view.render(T0 + timedelta(seconds=29, milliseconds=500))
    assert "ends in 0:00:02 (at 09:00:31)" in screen
    assert "extended to 09:00:31 (+1s)" in screen
    assert "[closing]" in view.render(T0 + timedelta(seconds=31))
    assert "ended at 09:00:31, closing..." in view.render(T0 + timedelta(seconds=31))
    view.apply(Closed("it1", 4, "sold", "alice", 110, 1, T0 + timedelta(seconds=31, milliseconds=300)))
    screen = view.render(T0 + timedelta(seconds=32))
    assert "[closed]  seq 4" in screen
    assert "result   sold to alice for $1.10   bids 1" in screen
    assert "closed at 09:00:31" in screen
    assert "minimum" not in screen
    assert "soft close" not in screen


def test_watch_view_of_an_item_closed_before_we_came() -> None:
    view = WatchView("it1")
    snap = Snapshot(item(status=Status.closed, current_price=1234, highest_bidder="alice", result=SOLD), 9)
    view.apply(snap)
    assert view.closed
    assert view.line(snap, T0) == "result   sold to alice for $12.34   bids 0  (seq 9)"


def test_json_lines_carry_the_new_kinds() -> None:
    """`--json` writes the typed events by class name with all their fields."""
    line = orjson.dumps(_as_dict(Closed("it1", 4, "no_sale", None, None, 0, T0)), default=str)
    assert orjson.loads(line) == {
        "type": "Closed", "item_id": "it1", "seq": 4, "outcome": "no_sale", "winner": None,
        "final_price": None, "bid_count": 0, "closed_at": "2026-12-03T09:00:00+00:00",
    }  # fmt: skip


async def test_watch_on_a_terminal_stops_at_count() -> None:
    """`--count` on a terminal returns at once after the last bid's redraw (the countdown's ticker,
    woken by that redraw, must not swallow its cancellation)."""

    async def script(ws: ServerConnection, number: int) -> None:
        await ws.send(timed(snapshot(ends_at=stamp(datetime.now(UTC) + timedelta(hours=1)))))
        await ws.send(timed(bid(2, 100)))
        await hold_open(ws)

    async with fake_fanout(script) as fake:
        out = Terminal()
        started = time.monotonic()
        async with asyncio.timeout(5):
            assert await watch(fake.url, "it1", as_json=False, count=1, out=out) == 0
        assert time.monotonic() - started < 3
        assert "price    1.00 USD  by alice" in out.getvalue().rsplit(CLEAR, 1)[1]


def test_a_proxy_bid_is_typed_as_such_and_auction_watch_marks_it() -> None:
    """`"proxy": true` on a bid event (placed for a maximum) reaches `BidPlaced.proxy`; a plain one is
    False; `auction watch` lists the automatic bid as such (the maximum itself is never sent)."""
    decoder = StreamDecoder(since=1)
    (plain,) = decoder.feed(frame(bid(2, 110, "bob")))
    (automatic,) = decoder.feed(frame({**bid(3, 120), "proxy": True}))
    assert isinstance(plain, BidPlaced)
    assert isinstance(automatic, BidPlaced)
    assert (plain.proxy, automatic.proxy) == (False, True)
    view = WatchView("it1")
    view.apply(Snapshot(item(), 1))
    view.apply(plain)
    view.apply(automatic)
    lines = view.render(T0).splitlines()
    assert any("alice" in line and line.endswith("(automatic, for a maximum)") for line in lines), lines
    assert not any("bob" in line and "automatic" in line for line in lines), lines
