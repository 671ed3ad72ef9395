"""The archival path's logic without servers: event conversion, rows, live state, settings, requests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from archiver.errors import InvalidArgument, ItemNotFound, MigrationError
from archiver.events import Incoming, rows_of
from archiver.history_service import check_request
from archiver.migrations import load
from auction.v1 import events_pb2, history_pb2, item_pb2
from auction_contract.events import bid_event
from core_bidder.restore_state import ArchivedBid, ArchivedItem, live_state
from core_bidder.rules import ItemStatic
from relay.convert import decode, outgoing, parse_ms, to_event
from relay.errors import BadEntry
from relay.settings import RelaySettings

CREATED_MS = 1_795_000_000_123
STATIC = ItemStatic("lot-7", "Clock", "A wall clock", "EUR", 100, 5, CREATED_MS, CREATED_MS)
ENDS_MS = CREATED_MS + 3_600_000


def created_json() -> str:
    return STATIC.created_event(ENDS_MS)


def bid_json(seq: int, amount: int, bidder: str = "alice") -> str:
    return bid_event("lot-7", seq, bidder, amount, CREATED_MS + seq * 1000, amount + 5, currency="EUR")


def test_parse_ms_reads_the_bidders_times_exactly() -> None:
    """RFC 3339 with milliseconds and Z, as the Lua script writes it, back to the same Unix ms."""
    assert parse_ms("1970-01-01T00:00:00.001Z") == 1
    assert parse_ms(orjson.loads(bid_json(2, 100))["placed_at"]) == CREATED_MS + 2000


def test_a_created_entry_becomes_an_item_created_event() -> None:
    """Event id "<item>.1", the item's fields, its window, status at creation and min next bid."""
    event = to_event(decode(created_json()))
    assert (event.event_id, event.item_id, event.seq) == ("lot-7.1", "lot-7", 1)
    item = event.item_created.item
    assert (item.title, item.description, item.currency) == ("Clock", "A wall clock", "EUR")
    assert (item.starting_price, item.min_increment, item.min_next_bid) == (100, 5, 100)
    assert item.status == item_pb2.ITEM_STATUS_OPEN
    assert item.ends_at.ToMilliseconds() == ENDS_MS
    assert event.occurred_at.ToMilliseconds() == CREATED_MS


def test_a_bid_entry_becomes_a_bid_accepted_event_with_its_own_currency() -> None:
    """The outbox bid carries its item's currency from the bid step; the relay needs no lookup."""
    message = outgoing(decode(bid_json(3, 110, "bob")), "auction.events")
    assert message.event_id == "lot-7.3"
    assert message.subject == "auction.events.lot-7"
    event = events_pb2.Event.FromString(message.payload)
    bid = event.bid_accepted
    assert (bid.bid_id, bid.bidder, bid.amount, bid.currency) == ("lot-7.3", "bob", 110, "EUR")
    assert (bid.current_price, bid.min_next_bid) == (110, 115)
    assert event.occurred_at.ToMilliseconds() == CREATED_MS + 3000


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"type":"bid"}',
        b'{"type":"weird","item_id":"x","seq":2}',
        b'{"item_id":"x","seq":2}',
    ],
)
def test_entries_that_are_not_events_are_refused(raw: bytes) -> None:
    with pytest.raises(BadEntry):
        decode(raw)


def test_an_incomplete_bid_is_refused() -> None:
    doc = decode(bid_json(2, 100))
    del doc["amount"]
    with pytest.raises(BadEntry):
        to_event(doc)


def incoming(seq: int, payload: bytes) -> Incoming:
    return Incoming(seq, "auction.events.lot-7", payload)


def test_rows_keep_each_event_once_and_set_aside_what_is_not_an_event() -> None:
    """A redelivered event inside one batch is one row; garbage and NUL texts become dead letters."""
    created = outgoing(decode(created_json()), "auction.events").payload
    bid = outgoing(decode(bid_json(2, 100)), "auction.events").payload
    nul_event = to_event(decode(bid_json(3, 105)))
    nul_event.bid_accepted.bidder = "ev\x00il"
    nul = nul_event.SerializeToString()
    extended = events_pb2.Event(
        event_id="lot-7.4", item_id="lot-7", seq=4, auction_extended=events_pb2.AuctionExtended()
    ).SerializeToString()
    rows = rows_of(
        [incoming(1, created), incoming(2, bid), incoming(3, bid), incoming(4, b"\xff\x00junk"),
         incoming(5, nul), incoming(6, extended)]
    )  # fmt: skip
    assert [i.item_id for i in rows.items] == ["lot-7"]
    assert [(b.bid_id, b.seq, b.bidder, b.amount, b.currency) for b in rows.bids] == [
        ("lot-7.2", 2, "alice", 100, "EUR")
    ]
    assert rows.bids[0].placed_at == datetime.fromtimestamp((CREATED_MS + 2000) / 1000, UTC)
    assert [d.stream_seq for d in rows.dead] == [4, 5]
    assert [(o.event_id, o.kind) for o in rows.others] == [("lot-7.4", "auction_extended")]


def test_live_state_matches_what_the_bidder_wrote() -> None:
    """Hash fields and history stream rebuilt from archive rows equal the bidder's own bytes."""
    item = ArchivedItem("lot-7", "Clock", "A wall clock", "EUR", 100, 5, CREATED_MS, ENDS_MS, CREATED_MS)
    bids = [ArchivedBid(seq, "alice", 100 + 5 * (seq - 2), CREATED_MS + seq * 1000, 105 + 5 * (seq - 2))
            for seq in range(2, 6)]  # fmt: skip
    state = live_state(item, len(bids), bids)
    assert state.seq == 5
    assert state.fields == {
        "title": "Clock", "desc": "A wall clock", "cur": "EUR", "sp": "100", "inc": "5",
        "st": str(CREATED_MS), "et": str(ENDS_MS), "ct": str(CREATED_MS), "bc": "4", "seq": "5",
        "price": "115", "hb": "alice",
    }  # fmt: skip
    assert state.events == [("1-0", created_json())] + [
        (f"{b.seq}-0", bid_json(b.seq, b.amount)) for b in bids
    ]


def test_live_state_history_holds_only_a_gap_free_run_of_the_newest_events() -> None:
    """A hole in the archived seqs ends the history there; the created event is kept only if reached."""
    item = ArchivedItem("lot-7", "Clock", "", "EUR", 100, 5, CREATED_MS, ENDS_MS, CREATED_MS)
    bids = [ArchivedBid(seq, "a", 100 + seq, CREATED_MS, 105 + seq) for seq in (2, 3, 5, 6)]
    state = live_state(item, 4, bids)
    assert [entry for entry, _ in state.events] == ["5-0", "6-0"]
    assert live_state(item, 0, []).events[0][0] == "1-0"
    assert "price" not in live_state(item, 0, []).fields


def test_bundled_migrations_are_numbered_from_one() -> None:
    migrations = load()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


def test_a_gap_in_migration_numbers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load(tmp_path)


def test_relay_settings_refuse_a_duplicate_window_shorter_than_a_retry() -> None:
    """A re-publish after the window would be stored twice by JetStream; such settings do not start."""
    with pytest.raises(ValidationError):
        RelaySettings(duplicate_window_seconds=10, claim_idle_seconds=15)


def test_history_requests_are_checked_before_any_query() -> None:
    assert check_request(history_pb2.ListBidsRequest(item_id="lot-7")) == 50
    assert check_request(history_pb2.ListBidsRequest(item_id="lot-7", limit=200)) == 200
    with pytest.raises(InvalidArgument):
        check_request(history_pb2.ListBidsRequest(item_id="lot-7", limit=201))
    with pytest.raises(InvalidArgument):
        check_request(history_pb2.ListBidsRequest(item_id="lot-7", before_seq=-1))
    with pytest.raises(ItemNotFound):
        check_request(history_pb2.ListBidsRequest(item_id="lot-7\n"))
