"""The fan-out's logic without I/O: ordering, frames, settings, and the SDK's stream bookkeeping."""

from __future__ import annotations

import time

import orjson
import pytest

from auction.live import BidPlaced, ItemCreated, OtherEvent, Reset, Snapshot, StreamDecoder, _Gap
from auction_contract.wire_time import parse_ms
from fanout.feed import frame_pause
from fanout.frames import RESET, error_frame, event_frames
from fanout.sequencing import Event, Sequencer, seq_of, seq_of_stream_id
from fanout.settings import FanoutSettings


def bid(seq: int) -> bytes:
    return (
        b'{"type":"bid","item_id":"it1","seq":%d,"bid_id":"it1.%d","bidder":"al","amount":%d,'
        b'"placed_at":"2026-11-23T12:00:00.123Z","current_price":%d,"min_next_bid":%d}'
        % (seq, seq, seq * 10, seq * 10, seq * 10 + 10)
    )


ITEM = {
    "id": "it1", "title": "Lamp", "description": "", "currency": "USD", "status": "open",
    "starting_price": 100, "min_increment": 10, "current_price": None, "highest_bidder": None,
    "bid_count": 0, "min_next_bid": 100, "starts_at": "2026-11-23T12:00:00.000Z",
    "ends_at": "2026-11-24T12:00:00.000Z", "seq": 1,
}  # fmt: skip


def test_sequencer_releases_in_order_once() -> None:
    """Duplicates and stale events are dropped; an out-of-order event waits for its predecessor."""
    s = Sequencer(last=3)
    for seq in (2, 3, 4, 4, 6):
        s.offer(Event(seq, bid(seq)))
    assert [e.seq for e in s.take_ready()] == [4]
    assert s.missing() == (5, 5)
    s.offer(Event(5, bid(5)))
    assert s.missing() is None
    assert [e.seq for e in s.take_ready()] == [5, 6]
    assert s.last == 6
    assert s.held == 0


def test_sequencer_skip_forgets_the_hole() -> None:
    """After the history lost a hole, skipping past it releases what follows."""
    s = Sequencer(last=1)
    s.offer(Event(9, bid(9)))
    assert s.missing() == (2, 8)
    s.skip_to(8)
    assert [e.seq for e in s.take_ready()] == [9]


def test_seq_parsing() -> None:
    assert seq_of(bid(42)) == 42
    assert seq_of_stream_id(b"17-0") == 17
    for bad in (b"{}", b"nope", b'{"seq":0}', b'{"seq":"3"}', b'{"seq":true}'):
        with pytest.raises(ValueError, match="seq"):
            seq_of(bad)


def test_frames_forward_the_bidders_bytes_with_the_server_time() -> None:
    """A lone event goes out as its own bytes plus `server_time`; several as one batch holding the same
    bytes beside `server_time` (RFC 3339, the clock a viewer corrects its countdown with)."""
    events = [Event(s, bid(s)) for s in (1, 2, 3)]
    (lone,) = list(event_frames(events[:1], 10))
    assert lone.startswith(bid(1)[:-1] + b',"server_time":"')
    decoded = orjson.loads(lone)
    stamp = decoded.pop("server_time")
    assert decoded == orjson.loads(bid(1))
    assert abs(parse_ms(stamp) - time.time() * 1000) < 5000
    (batch,) = list(event_frames(events, 10))
    assert batch.startswith(b'{"type":"batch","events":[' + b",".join(bid(s) for s in (1, 2, 3)) + b"]")
    assert orjson.loads(batch)["events"][2] == orjson.loads(bid(3))
    assert "server_time" in orjson.loads(batch)
    assert [len(orjson.loads(f).get("events", [f])) for f in event_frames(events, 2)] == [2, 1]
    assert orjson.loads(error_frame("item-not-found", "x")) == {
        "type": "error", "code": "item-not-found", "detail": "x"
    }  # fmt: skip


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """FANOUT_ settings: comma-separated origins, `*` allows any, defaults match the contract's port."""
    monkeypatch.setenv("FANOUT_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    settings = FanoutSettings()
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.port == 8081
    assert not settings.compression
    assert not settings.any_origin
    monkeypatch.setenv("FANOUT_ALLOWED_ORIGINS", "*")
    assert FanoutSettings().any_origin


def frame(message: dict[str, object]) -> bytes:
    return orjson.dumps(message)


def test_decoder_types_and_deduplicates() -> None:
    """Snapshot, batches and single events become typed events; repeats are dropped by seq."""
    d = StreamDecoder()
    (snap,) = d.feed(frame({"type": "snapshot", "item": ITEM, "seq": 1}))
    assert isinstance(snap, Snapshot)
    assert snap.item.id == "it1"
    assert snap.seq == 1
    batch = b'{"type":"batch","events":[' + bid(2) + b"," + bid(3) + b"]}"
    events = list(d.feed(batch))
    assert [type(e) for e in events] == [BidPlaced, BidPlaced]
    assert isinstance(events[0], BidPlaced)
    assert events[0].amount == 20
    assert list(d.feed(bid(3))) == []
    assert d.duplicates == 1
    (other,) = d.feed(frame({"type": "closed", "item_id": "it1", "seq": 4, "final_price": 30}))
    assert other == OtherEvent("closed", "it1", 4, {"final_price": 30})
    assert d.last_seq == 4


def test_decoder_detects_a_gap() -> None:
    """A seq jump raises (the stream then resumes with since=last), after yielding what came before."""
    d = StreamDecoder(since=1)
    seen: list[object] = []
    events = d.feed(b'{"type":"batch","events":[' + bid(2) + b"," + bid(4) + b"]}")
    seen.append(next(events))
    with pytest.raises(_Gap):
        next(events)
    assert [e.seq for e in seen if isinstance(e, BidPlaced)] == [2]
    assert d.last_seq == 2
    assert d.gaps == 1


def test_decoder_reset_accepts_the_new_snapshot() -> None:
    """After `reset` the next snapshot is taken even if it is older than what was seen."""
    d = StreamDecoder(since=50)
    assert list(d.feed(RESET)) == [Reset()]
    (snap,) = d.feed(frame({"type": "snapshot", "item": ITEM, "seq": 1}))
    assert isinstance(snap, Snapshot)
    assert d.last_seq == 1
    created = {
        "type": "created", "item_id": "it1", "seq": 2, "title": "Lamp", "description": "", "currency": "USD",
        "starting_price": 100, "min_increment": 10, "starts_at": "2026-11-23T12:00:00.000Z",
        "ends_at": "2026-11-24T12:00:00.000Z", "created_at": "2026-11-23T12:00:00.000Z",
    }  # fmt: skip
    (event,) = d.feed(frame(created))
    assert isinstance(event, ItemCreated)
    assert event.starts_at.tzinfo is not None


def test_frame_pause_bounds_one_items_share_of_the_process() -> None:
    """Cheap frames wait only the minimum interval; costly ones (a big audience) wait to keep the duty."""
    assert frame_pause(0.0005, 0.010, 0.5) == 0.010
    assert frame_pause(0.050, 0.010, 0.5) == pytest.approx(0.050)  # 50 ms of sending, 50 ms of rest
    assert frame_pause(0.050, 0.010, 0.25) == pytest.approx(0.150)
    assert frame_pause(0.050, 0.010, 1.0) == 0.010  # duty 1: the minimum interval only
