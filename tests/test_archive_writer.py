"""The archive writer on a real PostgreSQL: a batch is one transaction, and each event is stored once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from archiver.events import BidRow, ExtensionRow, ItemRow, ResultRow, Rows
from archiver.migrations import load, migrate
from archiver.writer import ArchiveWriter, PoisonRows, Written
from tests.archive_fixtures import fresh_database

__all__ = ["fresh_database"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def item(item_id: str) -> ItemRow:
    return ItemRow(item_id, "Clock", "", "EUR", 100, 5, NOW, NOW, NOW)


def bid(item_id: str, seq: int, currency: str = "EUR") -> BidRow:
    return BidRow(item_id, seq, f"{item_id}.{seq}", "alice", 100 + seq, currency, 100 + seq, 105 + seq, NOW)


async def writer_for(dsn: str) -> ArchiveWriter:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, load())
    finally:
        await conn.close()
    return ArchiveWriter(dsn, statement_timeout=5, connect_timeout=5)


async def test_a_redelivered_batch_inserts_nothing_the_second_time(fresh_database: str) -> None:
    """ON CONFLICT DO NOTHING on the event id: the same batch again changes nothing and raises nothing."""
    writer = await writer_for(fresh_database)
    try:
        rows = Rows(items=[item("a")], bids=[bid("a", 2), bid("a", 3)])
        assert await writer.write(rows) == Written(items=1, bids=2)
        assert await writer.write(rows) == Written()
        mixed = Rows(bids=[bid("a", 3), bid("a", 4)])
        assert await writer.write(mixed) == Written(bids=1)
    finally:
        await writer.close()


async def test_a_bid_archived_before_its_item_gets_the_items_currency(fresh_database: str) -> None:
    """Out-of-order redelivery: the bid comes first without currency; the item's arrival fills it in."""
    writer = await writer_for(fresh_database)
    try:
        await writer.write(Rows(bids=[bid("b", 2, currency="")]))
        await writer.write(Rows(items=[item("b")], bids=[bid("b", 3, currency="")]))
        conn = await asyncpg.connect(fresh_database)
        try:
            currencies = await conn.fetch("SELECT seq, currency FROM bids WHERE item_id = 'b' ORDER BY seq")
        finally:
            await conn.close()
        assert [(r["seq"], r["currency"]) for r in currencies] == [(2, "EUR"), (3, "EUR")]
    finally:
        await writer.close()


def extension(item_id: str, seq: int, ends: datetime, previous: datetime) -> ExtensionRow:
    return ExtensionRow(item_id, seq, f"{item_id}.{seq}", ends, previous)


def sold(item_id: str, seq: int, winner: str = "alice", price: int = 105) -> ResultRow:
    return ResultRow(item_id, seq, f"{item_id}.{seq}", "sold", winner, price, 1, NOW + timedelta(minutes=9))


async def test_extensions_and_results_are_stored_once_and_move_the_effective_end(
    fresh_database: str,
) -> None:
    """Redelivered extended and closed events insert nothing twice; `items.ends_at` is the latest end
    (also when an extension arrives before its item, or out of order); the rule, reserve and created end
    stay as created; one result row per item."""
    writer = await writer_for(fresh_database)
    later, latest = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    soft = item("c")._replace(
        soft_window_seconds=60, soft_extension_seconds=60, soft_max_ends_at=NOW + timedelta(hours=1),
        reserve_price=500,
    )  # fmt: skip
    try:
        # The second extension first, before its item (redeliveries out of order).
        assert await writer.write(Rows(extensions=[extension("c", 5, latest, later)])) == Written(
            extensions=1
        )
        batch = Rows(
            items=[soft], bids=[bid("c", 2), bid("c", 4)], extensions=[extension("c", 3, later, NOW)],
            results=[sold("c", 6)],
        )  # fmt: skip
        assert await writer.write(batch) == Written(items=1, bids=2, extensions=1, results=1)
        assert await writer.write(batch) == Written()
        assert await writer.write(Rows(extensions=[extension("c", 5, latest, later)])) == Written()
        conn = await asyncpg.connect(fresh_database)
        try:
            row = await conn.fetchrow("SELECT * FROM items WHERE item_id = 'c'")
            assert (row["ends_at"], row["created_ends_at"]) == (latest, NOW)
            assert (row["soft_window_seconds"], row["soft_extension_seconds"]) == (60, 60)
            assert (row["soft_max_ends_at"], row["reserve_price"]) == (NOW + timedelta(hours=1), 500)
            seqs = await conn.fetch("SELECT seq, ends_at FROM extensions WHERE item_id = 'c' ORDER BY seq")
            assert [(r["seq"], r["ends_at"]) for r in seqs] == [(3, later), (5, latest)]
            results = await conn.fetch("SELECT * FROM auction_results")
            assert [
                (
                    r["item_id"],
                    r["seq"],
                    r["event_id"],
                    r["outcome"],
                    r["winner"],
                    r["final_price"],
                    r["bid_count"],
                )
                for r in results
            ] == [("c", 6, "c.6", "sold", "alice", 105, 1)]
            # A stray older end never moves the effective end back.
            await writer.write(Rows(extensions=[extension("c", 7, NOW, NOW)]))
            assert await conn.fetchval("SELECT ends_at FROM items WHERE item_id = 'c'") == latest
        finally:
            await conn.close()
    finally:
        await writer.close()


async def test_a_second_different_close_of_an_item_is_refused_never_dropped(fresh_database: str) -> None:
    """One result row per item: another close of the same item (another event id) breaks the primary
    key, so PostgreSQL refuses the batch (`PoisonRows`: the consumer then stores that message as a dead
    letter), and the first result stays. A no-sale row holds neither winner nor price."""
    writer = await writer_for(fresh_database)
    try:
        unsold = ResultRow("d", 2, "d.2", "no_sale", None, None, 0, NOW)
        assert await writer.write(Rows(items=[item("d")], results=[unsold])) == Written(items=1, results=1)
        with pytest.raises(PoisonRows):
            await writer.write(Rows(results=[sold("d", 3)]))
        conn = await asyncpg.connect(fresh_database)
        try:
            rows = await conn.fetch("SELECT seq, outcome, winner, final_price FROM auction_results")
            assert [tuple(r) for r in rows] == [(2, "no_sale", None, None)]
            # The item row (a hard end) has no rule, no reserve, and its created end.
            row = await conn.fetchrow("SELECT * FROM items WHERE item_id = 'd'")
            assert [row[c] for c in ("soft_window_seconds", "soft_max_ends_at", "reserve_price")] == [
                None
            ] * 3
            assert row["created_ends_at"] == row["ends_at"] == NOW
        finally:
            await conn.close()
    finally:
        await writer.close()
