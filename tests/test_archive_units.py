"""The archival path's logic without servers: event conversion, rows, live state, settings, requests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from archiver.audit import audit_rows_of
from archiver.errors import InvalidArgument, ItemNotFound, MigrationError
from archiver.events import Incoming, rows_of
from archiver.history_service import check_request
from archiver.migrations import load
from auction.v1 import audit_pb2, events_pb2, history_pb2, item_pb2
from auction_contract.events import (
    Outcome,
    bid_event,
    closed_event,
    created_event,
    extended_event,
    max_raised_entry,
)
from auction_contract.rules import SoftCloseRule
from auction_contract.wire_time import timestamp
from core_bidder.restore_state import ArchivedBid, ArchivedClose, ArchivedExtension, ArchivedItem, live_state
from core_bidder.rules import ItemStatic
from relay.convert import Route, Routes, decode, outgoing, parse_ms, relayed, to_event
from relay.errors import BadEntry
from relay.settings import RelaySettings

CREATED_MS = 1_795_000_000_123
STATIC = ItemStatic("lot-7", "Clock", "A wall clock", "EUR", 100, 5, CREATED_MS, CREATED_MS)
ENDS_MS = CREATED_MS + 3_600_000
EVENTS = Route("AUCTION", "auction.events")
ROUTES = Routes(EVENTS, Route("AUCTION_AUDIT", "auction.audit"))


def ints_in(message: Any) -> set[int]:
    """Every integer anywhere in a protobuf message (nested messages and repeated fields included)."""
    found: set[int] = set()
    for _, value in message.ListFields():
        for one in value if isinstance(value, list) or hasattr(value, "append") else [value]:
            if hasattr(one, "ListFields"):
                found |= ints_in(one)
            elif isinstance(one, int):
                found.add(one)
    return found


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
    message = outgoing(decode(bid_json(3, 110, "bob")), EVENTS)
    assert message.msg_id == "lot-7.3"
    assert message.subject == "auction.events.lot-7"
    event = events_pb2.Event.FromString(message.payload)
    bid = event.bid_accepted
    assert (bid.bid_id, bid.bidder, bid.amount, bid.currency) == ("lot-7.3", "bob", 110, "EUR")
    assert (bid.current_price, bid.min_next_bid) == (110, 115)
    assert event.occurred_at.ToMilliseconds() == CREATED_MS + 3000


def test_proxy_bids_and_bid_kinds_reach_the_archive_as_they_were_made() -> None:
    """A proxy bid is a BidAccepted with `proxy`; the item's ladder and buy-now price ride on its creation."""
    raw = bid_event("lot-7", 4, "ann", 120, CREATED_MS + 4000, 125, currency="EUR", proxy=True)
    bid = to_event(decode(raw)).bid_accepted
    assert (bid.bidder, bid.amount, bid.proxy) == ("ann", 120, True)
    assert to_event(decode(bid_json(5, 130))).bid_accepted.proxy is False
    kinds = ItemStatic(
        "lot-8", "Vase", "", "EUR", 100, 5, CREATED_MS, CREATED_MS,
        increments=((0, 5), (1000, 50)), buy_now_price=900,
    )  # fmt: skip
    item = to_event(decode(kinds.created_event(ENDS_MS))).item_created.item
    assert [(s.from_price, s.increment) for s in item.increments] == [(0, 5), (1000, 50)]
    assert item.buy_now_price == 900
    assert not to_event(decode(created_json())).item_created.item.HasField("buy_now_price")


def test_the_leaders_maximum_leaves_only_as_an_audit_record_never_in_an_event() -> None:
    """A bid entry with its audit field `m` becomes its public event (no maximum in it anywhere), then a
    `MaximumAudit` on the audit stream and subjects, id "<item>.<seq>.bid.<max>"; an impossible `m` is
    dropped and the bid kept. A raise's outbox-only record becomes an audit record alone ("raise"). No
    event field can hold a maximum any more (the old ones are reserved)."""
    raw = bid_event("lot-7", 4, "ann", 120, CREATED_MS + 4000, 125, currency="EUR", proxy=True)
    public, audit = relayed(decode(raw), ROUTES, b"987654")
    assert (public.msg_id, public.stream, public.subject) == ("lot-7.4", "AUCTION", "auction.events.lot-7")
    event = events_pb2.Event.FromString(public.payload)
    assert (event.bid_accepted.amount, event.bid_accepted.proxy) == (120, True)
    assert 987654 not in ints_in(event)
    assert b"987654" not in public.payload
    assert (audit.msg_id, audit.stream, audit.subject) == (
        "lot-7.4.bid.987654",
        "AUCTION_AUDIT",
        "auction.audit.lot-7",
    )
    record = audit_pb2.MaximumAudit.FromString(audit.payload)
    assert (record.item_id, record.seq, record.bidder, record.max_amount) == ("lot-7", 4, "ann", 987654)
    assert (record.kind, record.at.ToMilliseconds()) == (audit_pb2.MAXIMUM_KIND_BID, CREATED_MS + 4000)
    for spoiled in (None, b"120", b"x", b"-5", b"9" * 19):  # no maximum, or an impossible one: the bid alone
        assert relayed(decode(raw), ROUTES, spoiled) == (public,)
    (raised,) = relayed(decode(max_raised_entry("lot-7", 4, "ann", 876543, CREATED_MS + 4500)), ROUTES)
    assert (raised.msg_id, raised.stream, raised.subject) == (
        "lot-7.4.raise.876543",
        "AUCTION_AUDIT",
        "auction.audit.lot-7",
    )
    record = audit_pb2.MaximumAudit.FromString(raised.payload)
    assert (record.kind, record.max_amount, record.at.ToMilliseconds()) == (
        audit_pb2.MAXIMUM_KIND_RAISE, 876543, CREATED_MS + 4500
    )  # fmt: skip
    with pytest.raises(BadEntry):
        to_event(decode(max_raised_entry("lot-7", 4, "ann", 876543, CREATED_MS + 4500)))
    assert "leader_max" not in events_pb2.BidAccepted.DESCRIPTOR.fields_by_name
    assert [f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["kind"].fields] == [
        "item_created", "bid_accepted", "auction_extended", "auction_closed"
    ]  # fmt: skip


def test_the_archive_rows_keep_bid_kinds_and_each_audit_record_once() -> None:
    """Events give the item's ladder and buy-now price and the bids' proxy flags; audit records give
    `maximum_audit` rows, a repeat within the batch once, and a malformed record is a dead letter."""
    kinds = ItemStatic(
        "lot-7", "Vase", "", "EUR", 100, 5, CREATED_MS, CREATED_MS,
        increments=((0, 5), (1000, 50)), buy_now_price=900,
    )  # fmt: skip
    proxy = bid_event("lot-7", 4, "ann", 120, CREATED_MS + 4000, 125, currency="EUR", proxy=True)
    public, audit = relayed(decode(proxy), ROUTES, b"300")
    payloads = [kinds.created_event(ENDS_MS, for_archive=True), bid_json(3, 100)]
    messages = [outgoing(decode(text), EVENTS).payload for text in payloads]
    rows = rows_of([incoming(n, data) for n, data in enumerate([*messages, public.payload])])
    assert orjson.loads(rows.items[0].increments or "") == [
        {"from": 0, "increment": 5}, {"from": 1000, "increment": 50}
    ]  # fmt: skip
    assert rows.items[0].buy_now_price == 900
    assert [(b.seq, b.proxy) for b in rows.bids] == [(3, False), (4, True)]
    assert (rows.others, rows.dead, rows.audits) == ([], [], [])
    (raised,) = relayed(decode(max_raised_entry("lot-7", 4, "ann", 450, CREATED_MS + 4500)), ROUTES)
    no_kind = audit_pb2.MaximumAudit(item_id="lot-7", seq=4, bidder="ann", max_amount=5, at=timestamp(1))
    bad = [b"\xff", no_kind.SerializeToString()]
    audits = audit_rows_of(
        [incoming(n, p) for n, p in enumerate([audit.payload, raised.payload, audit.payload, *bad])]
    )
    assert [(r.item_id, r.seq, r.kind, r.bidder, r.max_amount) for r in audits.audits] == [
        ("lot-7", 4, "bid", "ann", 300), ("lot-7", 4, "raise", "ann", 450)
    ]  # fmt: skip
    assert audits.audits[1].at == datetime.fromtimestamp((CREATED_MS + 4500) / 1000, UTC)
    assert [d.stream_seq for d in audits.dead] == [3, 4]
    assert (audits.bids, audits.items) == ([], [])


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


RULE = SoftCloseRule(window_ms=120_000, extension_ms=60_000, max_ends_ms=ENDS_MS + 600_000)
SOLD: dict[str, Any] = {"outcome": Outcome.SOLD, "winner": "bob", "final_price": 115, "bid_count": 4}


def soft_item_json(*, reserve: int | None = 500, rule: SoftCloseRule | None = RULE) -> str:
    """The outbox's copy of a created event: with the soft close rule and the hidden reserve."""
    return created_event(
        item_id="lot-7", title="Clock", description="A wall clock", currency="EUR", starting_price=100,
        min_increment=5, starts_ms=CREATED_MS, ends_ms=ENDS_MS, created_ms=CREATED_MS,
        soft_close=rule, reserve_price=reserve,
    )  # fmt: skip


def extended_json(seq: int, ends_ms: int, previous_ms: int) -> str:
    return extended_event("lot-7", seq, ends_ms, previous_ms)


def closed_json(seq: int, closed_ms: int = ENDS_MS + 5, **result: Any) -> str:
    return closed_event("lot-7", seq, closed_ms=closed_ms, **(result or SOLD))


def test_a_created_entry_carries_its_soft_close_rule_and_hidden_reserve() -> None:
    """The outbox copy's `soft_close` and `reserve_price` land on the Item; without them, neither is set."""
    item = to_event(decode(soft_item_json())).item_created.item
    assert (item.soft_close.window_seconds, item.soft_close.extension_seconds) == (120, 60)
    assert item.soft_close.max_ends_at.ToMilliseconds() == ENDS_MS + 600_000
    assert item.HasField("reserve_price")
    assert item.reserve_price == 500
    assert item.HasField("reserve_met")
    assert not item.reserve_met
    uncapped = to_event(decode(soft_item_json(reserve=None, rule=SoftCloseRule(1000, 2000, None))))
    uncapped_item = uncapped.item_created.item
    assert uncapped_item.HasField("soft_close")
    assert not uncapped_item.soft_close.HasField("max_ends_at")
    assert not uncapped_item.HasField("reserve_price")
    assert not uncapped_item.HasField("reserve_met")
    hard = to_event(decode(created_json())).item_created.item
    assert not hard.HasField("soft_close")
    assert not hard.HasField("reserve_price")


def test_an_extended_entry_becomes_auction_extended_without_a_made_up_time() -> None:
    """Both ends carried exactly; `occurred_at` stays unset (the event holds no time of its own)."""
    message = outgoing(decode(extended_json(5, ENDS_MS + 60_000, ENDS_MS)), EVENTS)
    assert (message.msg_id, message.subject) == ("lot-7.5", "auction.events.lot-7")
    event = events_pb2.Event.FromString(message.payload)
    assert event.WhichOneof("kind") == "auction_extended"
    assert (event.item_id, event.seq) == ("lot-7", 5)
    assert event.auction_extended.ends_at.ToMilliseconds() == ENDS_MS + 60_000
    assert event.auction_extended.previous_ends_at.ToMilliseconds() == ENDS_MS
    assert not event.HasField("occurred_at")


def test_a_closed_entry_becomes_auction_closed_at_its_close_time() -> None:
    """A sale names winner and price; no sale names neither; `occurred_at` is `closed_at`."""
    sold = to_event(decode(closed_json(6)))
    closed = sold.auction_closed
    assert (sold.event_id, sold.seq) == ("lot-7.6", 6)
    assert closed.outcome == item_pb2.AUCTION_OUTCOME_SOLD
    assert (closed.winner, closed.final_price, closed.bid_count) == ("bob", 115, 4)
    assert closed.closed_at.ToMilliseconds() == sold.occurred_at.ToMilliseconds() == ENDS_MS + 5
    unsold = to_event(decode(closed_json(2, outcome=Outcome.NO_SALE, winner=None, final_price=None,
                                         bid_count=0))).auction_closed  # fmt: skip
    assert unsold.outcome == item_pb2.AUCTION_OUTCOME_NO_SALE
    assert not unsold.HasField("winner")
    assert not unsold.HasField("final_price")
    assert unsold.bid_count == 0


def _spoiled(raw: str, **changes: Any) -> dict[str, Any]:
    doc = decode(raw)
    for name, value in changes.items():
        if value is ...:
            del doc[name]
        else:
            doc[name] = value
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        _spoiled(extended_json(5, ENDS_MS + 1, ENDS_MS), ends_at=...),
        _spoiled(extended_json(5, ENDS_MS + 1, ENDS_MS), previous_ends_at="yesterday"),
        _spoiled(extended_json(5, ENDS_MS, ENDS_MS + 1)),  # moves the end back
        _spoiled(closed_json(6), outcome="won"),
        _spoiled(closed_json(6), winner=None),
        _spoiled(closed_json(6), final_price="115"),
        _spoiled(closed_json(6), bid_count=True),
        _spoiled(closed_json(6), closed_at=...),
        _spoiled(closed_json(6, outcome=Outcome.NO_SALE, winner="bob", final_price=None, bid_count=1)),
        _spoiled(soft_item_json(), soft_close=[120, 60]),
        _spoiled(soft_item_json(), soft_close={"window_seconds": 1.5, "extension_seconds": 60}),
        _spoiled(soft_item_json(), reserve_price=-1),
    ],
    ids=lambda doc: f"{doc['type']}",
)
def test_malformed_extended_closed_and_created_entries_are_refused(doc: dict[str, Any]) -> None:
    """Each becomes `BadEntry`, which the relay moves to the dead letters once (as for bids)."""
    with pytest.raises(BadEntry):
        to_event(doc)


def test_rows_project_extensions_results_and_the_items_rule_and_reserve() -> None:
    """created -> its soft close columns and reserve; extended -> `extensions`; closed -> one result;
    a redelivered close within the batch is one row; a close that breaks the outcome rules is dead."""
    payloads = [outgoing(decode(raw), EVENTS).payload for raw in (
        soft_item_json(), bid_json(2, 100), extended_json(3, ENDS_MS + 60_000, ENDS_MS),
        closed_json(4, **SOLD), closed_json(4, **SOLD),
    )]  # fmt: skip
    no_winner = events_pb2.Event(
        event_id="lot-8.2", item_id="lot-8", seq=2,
        auction_closed=events_pb2.AuctionClosed(
            outcome=item_pb2.AUCTION_OUTCOME_SOLD, final_price=5, closed_at=timestamp(ENDS_MS)
        ),
    ).SerializeToString()  # fmt: skip
    rows = rows_of([incoming(n, p) for n, p in enumerate([*payloads, no_winner], start=1)])
    (item,) = rows.items
    assert (item.soft_window_seconds, item.soft_extension_seconds, item.reserve_price) == (120, 60, 500)
    assert item.soft_max_ends_at == datetime.fromtimestamp((ENDS_MS + 600_000) / 1000, UTC)
    assert item.ends_at == datetime.fromtimestamp(ENDS_MS / 1000, UTC)
    (extension,) = rows.extensions
    assert (extension.event_id, extension.seq) == ("lot-7.3", 3)
    assert extension.ends_at == datetime.fromtimestamp((ENDS_MS + 60_000) / 1000, UTC)
    assert extension.previous_ends_at == datetime.fromtimestamp(ENDS_MS / 1000, UTC)
    (result,) = rows.results
    assert result[:7] == ("lot-7", 4, "lot-7.4", "sold", "bob", 115, 4)
    assert result.closed_at == datetime.fromtimestamp((ENDS_MS + 5) / 1000, UTC)
    assert [d.stream_seq for d in rows.dead] == [6]
    assert rows.others == []
    hard = rows_of([incoming(1, outgoing(decode(created_json()), EVENTS).payload)]).items[0]
    assert hard[9:] == (None, None, None, None, None, None)


def test_rows_keep_each_event_once_and_set_aside_what_is_not_an_event() -> None:
    """A redelivered event inside one batch is one row; garbage and NUL texts become dead letters."""
    created = outgoing(decode(created_json()), EVENTS).payload
    bid = outgoing(decode(bid_json(2, 100)), EVENTS).payload
    nul_event = to_event(decode(bid_json(3, 105)))
    nul_event.bid_accepted.bidder = "ev\x00il"
    nul = nul_event.SerializeToString()
    no_ends = events_pb2.Event(
        event_id="lot-7.4", item_id="lot-7", seq=4, auction_extended=events_pb2.AuctionExtended()
    ).SerializeToString()
    rows = rows_of(
        [incoming(1, created), incoming(2, bid), incoming(3, bid), incoming(4, b"\xff\x00junk"),
         incoming(5, nul), incoming(6, no_ends)]
    )  # fmt: skip
    assert [i.item_id for i in rows.items] == ["lot-7"]
    assert [(b.bid_id, b.seq, b.bidder, b.amount, b.currency) for b in rows.bids] == [
        ("lot-7.2", 2, "alice", 100, "EUR")
    ]
    assert rows.bids[0].placed_at == datetime.fromtimestamp((CREATED_MS + 2000) / 1000, UTC)
    assert [d.stream_seq for d in rows.dead] == [4, 5, 6]
    assert rows.others == []


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


def test_live_state_restores_the_bid_kinds_fields_and_the_hidden_maximum() -> None:
    """The ladder, the buy-now price and the leader's maximum (only while above the price) come back as
    `create_item.lua` and `place_bid.lua` leave them; proxy bids' events say `"proxy":true` again and the
    created event carries the ladder and buy-now price, exactly as the bidder wrote them."""
    ladder = ((0, 5), (1000, 50))
    static = ItemStatic("lot-7", "Vase", "", "EUR", 100, 5, CREATED_MS, CREATED_MS, increments=ladder,
                        buy_now_price=900)  # fmt: skip
    item = ArchivedItem("lot-7", "Vase", "", "EUR", 100, 5, CREATED_MS, ENDS_MS, CREATED_MS,
                        increments=ladder, buy_now_price=900)  # fmt: skip
    bids = [ArchivedBid(2, "ann", 100, CREATED_MS, 105), ArchivedBid(3, "ann", 105, CREATED_MS, 110, True)]
    state = live_state(item, 2, bids, leader_max=400)
    assert (state.fields["incs"], state.fields["bn"], state.fields["lm"]) == ("0:5,1000:50", "900", "400")
    assert state.events[0] == ("1-0", static.created_event(ENDS_MS))
    assert state.events[2][1] == bid_event(
        "lot-7", 3, "ann", 105, CREATED_MS, 110, currency="EUR", proxy=True
    )
    assert "lm" not in live_state(item, 2, bids, leader_max=105).fields
    assert "lm" not in live_state(item, 2, bids).fields


def test_live_state_history_holds_only_a_gap_free_run_of_the_newest_events() -> None:
    """A hole in the archived seqs ends the history there; the created event is kept only if reached."""
    item = ArchivedItem("lot-7", "Clock", "", "EUR", 100, 5, CREATED_MS, ENDS_MS, CREATED_MS)
    bids = [ArchivedBid(seq, "a", 100 + seq, CREATED_MS, 105 + seq) for seq in (2, 3, 5, 6)]
    state = live_state(item, 4, bids)
    assert [entry for entry, _ in state.events] == ["5-0", "6-0"]
    assert live_state(item, 0, []).events[0][0] == "1-0"
    assert "price" not in live_state(item, 0, []).fields


def test_live_state_of_a_closed_extended_item_is_what_the_bidder_leaves() -> None:
    """Rule, reserve and result fields as the Lua scripts write them; `et` the effective end; `seq` the
    close's; the history every kind in seq order, with the created event's own (original) end."""
    moved = ENDS_MS + 60_000
    item = ArchivedItem("lot-7", "Clock", "A wall clock", "EUR", 100, 5, CREATED_MS, moved, CREATED_MS,
                        RULE, 500, ENDS_MS)  # fmt: skip
    bids = [
        ArchivedBid(2, "alice", 100, CREATED_MS + 2000, 105),
        ArchivedBid(3, "bob", 600, ENDS_MS - 10, 605),
    ]
    extensions = [ArchivedExtension(4, moved, ENDS_MS)]
    closed = ArchivedClose(5, Outcome.SOLD, "bob", 600, 2, moved + 7)
    state = live_state(item, 2, bids, extensions=extensions, closed=closed)
    assert state.seq == 5
    assert state.closed
    assert state.ends_ms == moved
    assert state.fields == {
        "title": "Clock", "desc": "A wall clock", "cur": "EUR", "sp": "100", "inc": "5",
        "st": str(CREATED_MS), "et": str(moved), "ct": str(CREATED_MS), "bc": "2", "seq": "5",
        "scw": "120000", "scx": "60000", "scm": str(ENDS_MS + 600_000), "rp": "500",
        "price": "600", "hb": "bob", "out": "sold", "win": "bob", "fp": "600", "cat": str(moved + 7),
    }  # fmt: skip
    assert state.events == [
        ("1-0", soft_item_json(reserve=None)),
        ("2-0", bid_event("lot-7", 2, "alice", 100, CREATED_MS + 2000, 105, currency="EUR")),
        ("3-0", bid_event("lot-7", 3, "bob", 600, ENDS_MS - 10, 605, currency="EUR")),
        ("4-0", extended_json(4, moved, ENDS_MS)),
        ("5-0", closed_json(5, moved + 7, outcome=Outcome.SOLD, winner="bob", final_price=600, bid_count=2)),
    ]
    assert "reserve_price" not in state.events[0][1]  # the history's copy never names the reserve
    kept = live_state(item, 2, bids, extensions=extensions, closed=closed, history_keep=2)
    assert [entry for entry, _ in kept.events] == ["4-0", "5-0"]
    assert kept.fields == state.fields


def test_live_state_of_an_unsold_item_and_of_an_open_extended_one() -> None:
    """No sale: `out` and `cat` only (no winner, no price); open: no result fields, seq the extension's."""
    uncapped = SoftCloseRule(60_000, 30_000, None)
    item = ArchivedItem("lot-7", "Clock", "", "EUR", 100, 5, CREATED_MS, ENDS_MS, CREATED_MS)
    unsold = live_state(item, 0, [], closed=ArchivedClose(2, Outcome.NO_SALE, None, None, 0, ENDS_MS))
    assert {k: unsold.fields[k] for k in ("seq", "out", "cat")} == {"seq": "2", "out": "no_sale",
                                                                    "cat": str(ENDS_MS)}  # fmt: skip
    assert not {"win", "fp", "price", "hb", "scw", "rp"} & unsold.fields.keys()
    assert [entry for entry, _ in unsold.events] == ["1-0", "2-0"]
    extended = ArchivedItem("lot-7", "Clock", "", "EUR", 100, 5, CREATED_MS, ENDS_MS + 30_000, CREATED_MS,
                            uncapped, None, ENDS_MS)  # fmt: skip
    bid = ArchivedBid(2, "a", 100, ENDS_MS - 1, 105)
    open_ = live_state(extended, 1, [bid], extensions=[ArchivedExtension(3, ENDS_MS + 29_999, ENDS_MS)])
    assert (open_.seq, open_.closed, open_.fields["scm"], open_.fields["et"]) == (
        3,
        False,
        "",
        str(ENDS_MS + 30_000),
    )
    assert not {"out", "win", "fp", "cat"} & open_.fields.keys()
    assert orjson.loads(open_.events[0][1])["ends_at"] == "2026-11-18T12:06:40.123Z"  # as created


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
