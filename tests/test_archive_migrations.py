"""The archive schema on a real PostgreSQL: applied once in order, tracked, and guarded against edits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from archiver.errors import MigrationError
from archiver.migrations import load, migrate
from archiver.rebuild import read_item
from auction.v1 import restore_pb2
from auction_contract.wire_time import timestamp_from_datetime
from tests.archive_fixtures import fresh_database

__all__ = ["fresh_database"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def empty_db(fresh_database: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(fresh_database)
    try:
        yield conn
    finally:
        await conn.close()


async def test_migrations_apply_once_in_order_and_are_tracked(empty_db: Any) -> None:
    """The first run applies every file and records it; the second applies nothing."""
    wanted = load()
    assert [m.version for m in await migrate(empty_db, wanted)] == [m.version for m in wanted]
    assert await migrate(empty_db, wanted) == []
    rows = await empty_db.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in wanted]
    tables = {r["tablename"] for r in await empty_db.fetch("SELECT tablename FROM pg_tables")}
    assert {"items", "bids", "other_events", "dead_letters", "extensions", "auction_results"} <= tables


async def test_an_archive_from_before_auctions_ended_migrates_and_reads_as_hard_ends(empty_db: Any) -> None:
    """Items archived under 0001 keep their rows through 0002: no rule, no reserve, no result, their end
    as created; the rebuild reads them as such (and a pre-0002 bid still counts)."""
    wanted = load()
    await migrate(empty_db, wanted[:1])
    await empty_db.execute(
        """INSERT INTO items (item_id, title, description, currency, starting_price, min_increment,
                              starts_at, ends_at, created_at)
           VALUES ('old', 'Clock', '', 'EUR', 100, 5, $1, $2, $1)""",
        NOW, NOW + timedelta(hours=1),
    )  # fmt: skip
    await empty_db.execute(
        """INSERT INTO bids (item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid,
                             placed_at) VALUES ('old', 2, 'old.2', 'ann', 100, 'EUR', 100, 105, $1)""",
        NOW,
    )
    assert [m.version for m in await migrate(empty_db, wanted)] == [m.version for m in wanted[1:]]
    request = await read_item(empty_db, "old", 100)
    assert request is not None
    item = request.item
    assert not item.HasField("soft_close")
    assert not item.HasField("reserve_price")
    assert not item.HasField("result")
    assert not request.HasField("closed")
    assert item.created_ends_at == item.ends_at == timestamp_from_datetime(NOW + timedelta(hours=1))
    assert (request.bid_count, [b.seq for b in request.recent_bids], len(request.recent_extensions)) == (
        1,
        [2],
        0,
    )
    # And through 0003: no ladder, no buy-now, a plain bid, no hidden maximum.
    assert not item.increments
    assert not item.HasField("buy_now_price")
    assert request.recent_bids[0].proxy is False
    assert not request.HasField("leader_max")


async def _bid_row(conn: Any, seq: int, bidder: str, amount: int, leader_max: int | None) -> None:
    """A bid and, when it left its bidder a maximum, that bid's audit record."""
    await conn.execute(
        """INSERT INTO bids (item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid,
                             placed_at, proxy)
           VALUES ('lot', $1, $2, $3, $4, 'EUR', $4, $5, $6, $7)""",
        seq, f"lot.{seq}", bidder, amount, amount + 10, NOW, leader_max is not None,
    )  # fmt: skip
    if leader_max is not None:
        await _audit_row(conn, seq, "bid", bidder, leader_max)


async def _raise_row(conn: Any, seq: int, bidder: str, max_amount: int) -> None:
    await _audit_row(conn, seq, "raise", bidder, max_amount)


async def _audit_row(conn: Any, seq: int, kind: str, bidder: str, max_amount: int) -> None:
    await conn.execute(
        """INSERT INTO maximum_audit (item_id, seq, kind, bidder, max_amount, at)
           VALUES ('lot', $1, $2, $3, $4, $5)""",
        seq, kind, bidder, max_amount, NOW,
    )  # fmt: skip


async def test_the_rebuild_reads_the_leaders_maximum_from_the_audit_records(empty_db: Any) -> None:
    """The leader's hidden maximum is the newest bid's audit value or a later raise of that bidder's,
    whichever is higher; raises before the newest bid or by someone else do not count, and without a
    maximum above the price there is none. The ladder and buy-now price come back with the item."""
    await migrate(empty_db, load())
    await empty_db.execute(
        """INSERT INTO items (item_id, title, description, currency, starting_price, min_increment,
                              starts_at, ends_at, created_at, increments, buy_now_price)
           VALUES ('lot', 'Vase', '', 'EUR', 100, 10, $1, $2, $1,
                   '[{"from": 0, "increment": 10}, {"from": 500, "increment": 50}]', 5000)""",
        NOW, NOW + timedelta(hours=1),
    )  # fmt: skip
    assert not (await read_item(empty_db, "lot", 100) or restore_pb2.RestoreItemRequest()).HasField(
        "leader_max"
    )
    await _bid_row(empty_db, 2, "ann", 100, 400)
    await _raise_row(empty_db, 2, "ann", 900)  # before bob's bid: beaten since
    await _bid_row(empty_db, 3, "bob", 910, None)
    await _bid_row(empty_db, 4, "ann", 920, 1000)
    request = await read_item(empty_db, "lot", 100)
    assert request is not None
    assert [(s.from_price, s.increment) for s in request.item.increments] == [(0, 10), (500, 50)]
    assert request.item.buy_now_price == 5000
    assert [(b.seq, b.proxy) for b in request.recent_bids] == [(2, True), (3, False), (4, True)]
    assert request.leader_max == 1000
    await _raise_row(empty_db, 4, "bob", 5000)  # not the leader's: ignored
    await _raise_row(empty_db, 4, "ann", 1500)
    await _raise_row(empty_db, 4, "ann", 1200)
    assert (await read_item(empty_db, "lot", 100) or request).leader_max == 1500
    await _bid_row(empty_db, 5, "cy", 1600, None)
    assert not (await read_item(empty_db, "lot", 100) or request).HasField("leader_max")


async def test_an_archive_at_0003_moves_its_maximums_into_the_audit_table(empty_db: Any) -> None:
    """Maximums archived under 0003 (`bids.leader_max`, `max_raises`) are in `maximum_audit` after 0004,
    and nowhere else: the column and the table are gone, the rebuild reads the same maximum."""
    wanted = load()
    await migrate(empty_db, wanted[:3])
    await empty_db.execute(
        """INSERT INTO items (item_id, title, description, currency, starting_price, min_increment,
                              starts_at, ends_at, created_at)
           VALUES ('lot', 'Vase', '', 'EUR', 100, 10, $1, $2, $1)""",
        NOW, NOW + timedelta(hours=1),
    )  # fmt: skip
    await empty_db.execute(
        """INSERT INTO bids (item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid,
                             placed_at, proxy, leader_max)
           VALUES ('lot', 2, 'lot.2', 'ann', 100, 'EUR', 100, 110, $1, true, 400),
                  ('lot', 3, 'lot.3', 'bob', 200, 'EUR', 200, 210, $1, false, NULL)""",
        NOW,
    )  # fmt: skip
    await empty_db.execute(
        """INSERT INTO bids (item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid,
                             placed_at, proxy, leader_max)
           VALUES ('lot', 4, 'lot.4', 'ann', 210, 'EUR', 210, 220, $1, true, 400)""",
        NOW,
    )
    await empty_db.execute(
        """INSERT INTO max_raises (event_id, item_id, seq, bidder, max_amount, raised_at)
           VALUES ('lot.4.max.700', 'lot', 4, 'ann', 700, $1)""",
        NOW,
    )
    assert [m.version for m in await migrate(empty_db, wanted)] == [4]
    rows = await empty_db.fetch(
        "SELECT seq, kind, bidder, max_amount, at FROM maximum_audit ORDER BY seq, kind"
    )
    assert [tuple(r) for r in rows] == [
        (2, "bid", "ann", 400, NOW), (4, "bid", "ann", 400, NOW), (4, "raise", "ann", 700, NOW)
    ]  # fmt: skip
    assert await empty_db.fetchval("SELECT to_regclass('max_raises')") is None
    columns = await empty_db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'bids'"
    )
    assert "leader_max" not in {r["column_name"] for r in columns}
    request = await read_item(empty_db, "lot", 100)
    assert request is not None
    assert request.leader_max == 700


async def test_an_edited_migration_stops_the_start(empty_db: Any, tmp_path: Path) -> None:
    """A file changed after it was applied means the database no longer matches the code: refuse."""
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (x int);")
    await migrate(empty_db, load(tmp_path))
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (x bigint);")
    with pytest.raises(MigrationError):
        await migrate(empty_db, load(tmp_path))


async def test_a_failed_migration_leaves_nothing_behind(empty_db: Any, tmp_path: Path) -> None:
    """Each file runs in one transaction with its tracking row: a failure applies none of it."""
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (x int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE u (y int); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(empty_db, load(tmp_path))
    assert await empty_db.fetchval("SELECT max(version) FROM schema_migrations") == 1
    assert await empty_db.fetchval("SELECT to_regclass('u')") is None
