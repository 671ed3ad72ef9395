"""Every component SIGKILLed in turn under one bidding war, on the platform as `make up` runs it.

`auction_bench.chaos` does the work (experiment 3d runs the same code): `python -m devstack up` on free
ports, 24 SDK bidders over 3 lots at a time (each bid with its Idempotency-Key, the SDK retrying, a
failed call sent again with the same key), 2 SDK viewers per lot, lots ending every few seconds so
auctions close all through; then an edge worker, the edge's main process, the bidder, Redis (back on its
AOF), a fan-out process, the relay, NATS, the archiver and PostgreSQL are SIGKILLed one after another,
each left to the supervisor to restart, the platform ready again before the next. Checked after each
kill and at the end: every bid a client saw accepted is in its item's history and the archive exactly
once, as acknowledged; no key was answered with two bids; no bid was placed that no client heard of;
every lot closed exactly once, to its highest bid; every viewer saw every event once, in seq order, as
archived; every bid's outcome became known.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from auction_bench import chaos_check
from auction_bench.chaos import ChaosScale, longest_gap, run_chaos
from auction_bench.chaos_kills import TARGETS
from auction_bench.chaos_records import Event, Records, Result
from auction_bench.chaos_war import Accepted, ViewerLog, WarLog, WarSize
from devstack.stack import default_edge_workers
from tests.conftest import scaled

SCALE = ChaosScale(
    WarSize(bidders=24, open_lots=3, lifetime=5.0, viewers_per_lot=2),
    settle=2.0,
    back_within=scaled(120),
    archived_within=scaled(90),
)


@pytest.mark.timeout(scaled(600))
async def test_every_component_killed_mid_war_loses_nothing_and_places_nothing_twice(tmp_path: Path) -> None:
    """Nine SIGKILLs under one war: per kill and at the end nothing lost, nothing twice, closes and
    viewers right; every killed process was restarted and bids were accepted after each kill."""
    lines: list[str] = []
    figures = await run_chaos(tmp_path / "stack", SCALE, progress=lines.append)
    report = "\n".join(lines)
    expected = [target for target in TARGETS if default_edge_workers() > 1 or not target.worker]
    assert [row.component for row in figures.kills] == [target.component for target in expected]
    for row in figures.kills:
        assert (row.lost, row.duplicated) == (0, 0), (row.component, row.faults)
        assert row.restarts >= 1, (row.component, report)
        assert row.accepted > 0, (row.component, report)
    # The kills on the bid path cut calls off: their keys were sent again, and answered once.
    resent = {row.component: row.resends for row in figures.kills}
    assert all(resent[name] > 0 for name in ("edge main", "bidder", "redis")), resent
    assert figures.lost == [], figures.lost[:20]
    assert figures.duplicated == [], figures.duplicated[:20]
    assert figures.closes == [], figures.closes[:20]
    assert figures.viewer_faults == [], figures.viewer_faults[:20]
    assert figures.unexpected == [], figures.unexpected[:20]
    assert figures.unresolved == 0
    assert figures.exact
    # Lots closed all through the chaos, each watched, and the war was a war.
    assert figures.items > len(expected)
    assert figures.viewers == figures.items * SCALE.war.viewers_per_lot
    assert figures.accepted > 10 * len(expected)


# The checks themselves, on hand-made records: each must catch what it is there for.


def _war(*bids: Accepted) -> WarLog:
    log = WarLog()
    for bid in bids:
        log.record(bid.key, bid)
    return log


A1 = Accepted("k1", "lot", "lot.2", 2, "ann", 100, 1.0)
A2 = Accepted("k2", "lot", "lot.3", 3, "bob", 110, 2.0)
CREATED = Event(1, "created", "", "", -1)
E1, E2 = Event(2, "bid", "lot.2", "ann", 100), Event(3, "bid", "lot.3", "bob", 110)
CLOSE = Event(4, "closed", "", "bob", 110)
STATE = {"status": "closed", "result": {"winner": "bob", "final_price": 110}, "bid_count": 2, "seq": 4}


def _records(history: list[Event], archived: list[Event], results: list[Result] | None = None) -> Records:
    done = [Result(4, "sold", "bob", 110)] if results is None else results
    return Records({"lot": history}, {"lot": archived}, {"lot": done}, {"lot": STATE})


def test_the_checks_pass_a_clean_record() -> None:
    log = _war(A1, A2)
    records = _records([CREATED, E1, E2, CLOSE], [E1, E2])
    viewer = ViewerLog("lot", snapshot_seq=2, events=[E2, CLOSE], finished=True)
    assert chaos_check.lost([A1, A2], records) == []
    assert chaos_check.duplicated(log, records, complete=True) == []
    assert chaos_check.closes(["lot"], log, records) == []
    assert chaos_check.viewers([viewer], records) == []


def test_an_acknowledged_bid_missing_or_changed_is_lost() -> None:
    changed = Event(3, "bid", "lot.3", "carl", 110)  # the seq reused by another bid (a rolled-back store)
    assert len(chaos_check.lost([A1, A2], _records([CREATED, E1, changed, CLOSE], [E1, E2]))) == 1
    assert len(chaos_check.lost([A1, A2], _records([CREATED, E1, E2, CLOSE], [E1]))) == 1
    assert chaos_check.lost([A1], _records([CREATED, E1, CLOSE], [E1])) != []  # a hole at seq 3


def test_a_key_answered_twice_or_a_bid_nobody_heard_of_is_duplicated() -> None:
    log = _war(A1, A2, Accepted("k1", "lot", "lot.4", 4, "ann", 100, 3.0))
    records = _records([CREATED, E1, E2, CLOSE], [E1, E2])
    assert any("key k1" in fault for fault in chaos_check.duplicated(log, records, complete=False))
    unheard = chaos_check.duplicated(_war(A1), records, complete=True)
    assert unheard == ["lot.3 (bob 110) placed, never acknowledged"]
    assert chaos_check.duplicated(_war(A1), records, complete=False) == []  # its answer may be on its way
    twice = chaos_check.duplicated(
        _war(A1, A2), _records([CREATED, E1, E2, CLOSE], [E1, E2, E2]), complete=True
    )
    assert twice


def test_a_missing_second_or_wrong_close_is_caught() -> None:
    log = _war(A1, A2)
    assert chaos_check.closes(["lot"], log, _records([CREATED, E1, E2], [E1, E2])) != []
    assert chaos_check.closes(["lot"], log, _records([CREATED, E1, E2, CLOSE, CLOSE], [E1, E2])) != []
    wrong = Event(4, "closed", "", "ann", 100)
    assert chaos_check.closes(["lot"], log, _records([CREATED, E1, E2, wrong], [E1, E2])) != []
    assert chaos_check.closes(["lot"], log, _records([CREATED, E1, E2, CLOSE], [E1, E2], results=[])) != []


def test_a_viewer_that_missed_repeated_reordered_or_reset_is_caught() -> None:
    records = _records([CREATED, E1, E2, CLOSE], [E1, E2])
    for shown, resets in (
        ([E1, CLOSE], 0),
        ([E1, E2, E2, CLOSE], 0),
        ([E2, E1, CLOSE], 0),
        ([E1, E2, CLOSE], 1),
    ):
        viewer = ViewerLog("lot", snapshot_seq=1, events=shown, resets=resets, finished=True)
        assert chaos_check.viewers([viewer], records) != [], shown
    unfinished = ViewerLog("lot", snapshot_seq=1, events=[E1, E2], finished=False)
    assert chaos_check.viewers([unfinished], records) != []


def test_the_longest_gap_counts_from_the_kill_to_the_next() -> None:
    assert longest_gap([0.5, 1.0, 4.0, 4.5], start=1.0, end=5.0) == 3.0
    assert longest_gap([], start=1.0, end=3.5) == 2.5
