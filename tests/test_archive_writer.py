"""The archive writer on a real PostgreSQL: a batch is one transaction, and each event is stored once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from archiver.events import BidRow, ItemRow, Rows
from archiver.migrations import load, migrate
from archiver.writer import ArchiveWriter, Written
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
