"""Writes one batch of rows in one transaction; existing event ids are skipped, never overwritten.

Each table gets one `INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING`: a thousand rows cost
one statement and one round trip each, not a thousand. Bid events carry their currency; only events
written by a bidder older than that have none, and for those the item's currency is filled in (items go
first, so a bid in the same batch finds it, and bids that came even earlier get it then). The same
holds for the effective end: an item's `ends_at` is the latest of its created end and its archived
extensions', whichever arrived first.

The writer owns one connection. A write that fails or outlasts its deadline drops that connection at
once (`terminate`, no network wait), because a frozen server would leave a polite close hanging as well;
the next write connects again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from archiver.deadline import within
from archiver.errors import ArchiveUnavailable

if TYPE_CHECKING:
    from archiver.events import Rows

_ITEMS = """
INSERT INTO items (item_id, title, description, currency, starting_price, min_increment,
                   starts_at, ends_at, created_at, created_ends_at,
                   soft_window_seconds, soft_extension_seconds, soft_max_ends_at, reserve_price,
                   increments, buy_now_price)
SELECT i.item_id, i.title, i.description, i.currency, i.starting_price, i.min_increment,
       i.starts_at, i.ends_at, i.created_at, i.ends_at,
       i.soft_window_seconds, i.soft_extension_seconds, i.soft_max_ends_at, i.reserve_price,
       i.increments::jsonb, i.buy_now_price
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
            $7::timestamptz[], $8::timestamptz[], $9::timestamptz[],
            $10::integer[], $11::integer[], $12::timestamptz[], $13::bigint[], $14::text[], $15::bigint[])
     AS i(item_id, title, description, currency, starting_price, min_increment, starts_at, ends_at,
          created_at, soft_window_seconds, soft_extension_seconds, soft_max_ends_at, reserve_price,
          increments, buy_now_price)
ON CONFLICT DO NOTHING
"""
_BIDS = """
INSERT INTO bids (item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid, placed_at,
                  proxy)
SELECT b.item_id, b.seq, b.bid_id, b.bidder, b.amount, COALESCE(NULLIF(b.currency, ''), i.currency, ''),
       b.current_price, b.min_next_bid, b.placed_at, b.proxy
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[],
            $8::bigint[], $9::timestamptz[], $10::boolean[])
     AS b(item_id, seq, bid_id, bidder, amount, currency, current_price, min_next_bid, placed_at, proxy)
LEFT JOIN items i ON i.item_id = b.item_id
ON CONFLICT DO NOTHING
"""
# AUDIT ONLY (never public): see archiver/sql/0004_maximum_audit.sql. A re-published record is skipped.
_AUDITS = """
INSERT INTO maximum_audit (item_id, seq, kind, bidder, max_amount, at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
ON CONFLICT DO NOTHING
"""
# A bid archived before its item (possible only with redeliveries out of order) got no currency; its
# item's arrival fills it in. The primary key (item_id, seq) makes this an index range per item.
_LATE_CURRENCY = """
UPDATE bids b SET currency = i.currency FROM items i
WHERE i.item_id = ANY($1::text[]) AND b.item_id = i.item_id AND b.currency = ''
"""
_EXTENSIONS = """
INSERT INTO extensions (item_id, seq, event_id, ends_at, previous_ends_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[])
ON CONFLICT DO NOTHING
"""
# `items.ends_at` is the effective end: the latest of the created end and every archived extension's.
# Run for the items of the batch's extensions and for the batch's new items (an extension redelivered
# before its item was archived moves the end as soon as the item arrives). Ends never move back.
_EFFECTIVE_ENDS = """
UPDATE items i SET ends_at = x.ends_at
FROM (SELECT item_id, max(ends_at) AS ends_at FROM extensions WHERE item_id = ANY($1::text[])
      GROUP BY item_id) x
WHERE i.item_id = x.item_id AND i.ends_at < x.ends_at
"""
# Skips a redelivered close (its event id); a different second close of one item breaks the primary
# key, so PostgreSQL refuses it and it becomes a dead letter (see `PoisonRows`), never lost silently.
_RESULTS = """
INSERT INTO auction_results (item_id, seq, event_id, outcome, winner, final_price, bid_count, closed_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::bigint[], $8::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""
_OTHERS = """
INSERT INTO other_events (event_id, item_id, seq, kind, occurred_at, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[], $6::bytea[])
ON CONFLICT DO NOTHING
"""
_DEAD = """
INSERT INTO dead_letters (stream_seq, subject, payload, error)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[])
ON CONFLICT DO NOTHING
"""


class PoisonRows(Exception):
    """PostgreSQL refused the data itself (not the connection): retrying the same batch cannot help."""


@dataclass(frozen=True, slots=True)
class Written:
    """Rows inserted now; the rest of the batch was already archived (redeliveries)."""

    items: int = 0
    bids: int = 0
    others: int = 0
    dead: int = 0
    extensions: int = 0
    results: int = 0
    audits: int = 0

    def __add__(self, other: Written) -> Written:
        return Written(
            self.items + other.items, self.bids + other.bids, self.others + other.others,
            self.dead + other.dead, self.extensions + other.extensions, self.results + other.results,
            self.audits + other.audits,
        )  # fmt: skip

    @property
    def events(self) -> int:
        """Messages inserted, events or audit records (dead letters are neither)."""
        return self.items + self.bids + self.others + self.extensions + self.results + self.audits


def _columns(rows: list[Any], count: int) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(count)]


def _inserted(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])


class ArchiveWriter:
    def __init__(self, dsn: str, statement_timeout: float, connect_timeout: float) -> None:
        self._dsn = dsn
        self._timeout = statement_timeout
        self._connect_timeout = connect_timeout
        self._conn: Any = None

    async def write(self, rows: Rows) -> Written:
        """Commit the rows in one transaction, or raise (`ArchiveUnavailable`, `PoisonRows`)."""
        try:
            conn = await self._connection()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveUnavailable(f"cannot connect: {exc!r}") from exc
        try:
            return await within(self._timeout, conn, lambda c: self._transaction(c, rows))
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise PoisonRows(repr(exc)) from exc
        except Exception as exc:
            self._drop()
            raise ArchiveUnavailable(repr(exc)) from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), timeout=1.0)
            except Exception:
                conn.terminate()

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    @staticmethod
    async def _transaction(conn: Any, rows: Rows) -> Written:
        async with conn.transaction():
            items = bids = others = dead = extensions = results = audits = 0
            if rows.items:
                items = _inserted(await conn.execute(_ITEMS, *_columns(rows.items, 15)))
                if items:
                    await conn.execute(_LATE_CURRENCY, [row.item_id for row in rows.items])
            if rows.bids:
                bids = _inserted(await conn.execute(_BIDS, *_columns(rows.bids, 10)))
            if rows.audits:
                audits = _inserted(await conn.execute(_AUDITS, *_columns(rows.audits, 6)))
            if rows.extensions:
                extensions = _inserted(await conn.execute(_EXTENSIONS, *_columns(rows.extensions, 5)))
            if rows.extensions or items:
                moved = {row.item_id for row in rows.extensions}
                if items:
                    moved.update(row.item_id for row in rows.items)
                await conn.execute(_EFFECTIVE_ENDS, sorted(moved))
            if rows.results:
                results = _inserted(await conn.execute(_RESULTS, *_columns(rows.results, 8)))
            if rows.others:
                others = _inserted(await conn.execute(_OTHERS, *_columns(rows.others, 6)))
            if rows.dead:
                dead = _inserted(await conn.execute(_DEAD, *_columns(rows.dead, 4)))
        return Written(items, bids, others, dead, extensions, results, audits)
