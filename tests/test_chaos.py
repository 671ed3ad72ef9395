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

from auction_bench.chaos import ChaosScale, run_chaos
from auction_bench.chaos_kills import TARGETS
from auction_bench.chaos_war import WarSize
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
    assert [row.component for row in figures.kills] == [target.component for target in TARGETS]
    for row in figures.kills:
        assert (row.lost, row.duplicated) == (0, 0), (row.component, row.faults)
        assert row.restarts >= 1, (row.component, report)
        assert row.accepted > 0, (row.component, report)
    assert figures.lost == [], figures.lost[:20]
    assert figures.duplicated == [], figures.duplicated[:20]
    assert figures.closes == [], figures.closes[:20]
    assert figures.viewer_faults == [], figures.viewer_faults[:20]
    assert figures.unexpected == [], figures.unexpected[:20]
    assert figures.unresolved == 0
    assert figures.exact
    # Lots closed all through the chaos, each watched, and the war was a war.
    assert figures.items > len(TARGETS)
    assert figures.viewers == figures.items * SCALE.war.viewers_per_lot
    assert figures.accepted > 10 * len(TARGETS)
