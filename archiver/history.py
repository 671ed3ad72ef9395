"""Reads for the history service: one item's bids, newest first, a page at a time.

Pages are keyed by seq (`before_seq`), not offsets: the primary key (item_id, seq) serves every page with
one index range scan however deep it is, and bids archived meanwhile never shift a page. Every read has a
deadline; past it the connection is dropped (a frozen server would keep it forever) and the caller gets
`ArchiveUnavailable`, which the service answers as UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from archiver.deadline import DeadlineExceeded, within
from archiver.errors import ArchiverError, ArchiveUnavailable, ItemNotFound

T = TypeVar("T")
NEWEST = 2**63 - 1

_PAGE = """
SELECT bid_id, seq, bidder, amount, currency, placed_at FROM bids
WHERE item_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3
"""
_ITEM_EXISTS = "SELECT EXISTS (SELECT 1 FROM items WHERE item_id = $1)"


@dataclass(frozen=True, slots=True)
class BidRecord:
    bid_id: str
    seq: int
    bidder: str
    amount: int
    currency: str
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class BidPage:
    bids: list[BidRecord]
    # The `before_seq` of the next (older) page; 0 when there is none.
    next_before_seq: int


class HistoryReader:
    def __init__(self, dsn: str, size: int, timeout: float, connect_timeout: float) -> None:
        self._dsn = dsn
        self._size = size
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._pool: Any = None

    async def open(self) -> None:
        # min_size 0: the pool connects on demand, so an archiver can start while PostgreSQL is away.
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=0, max_size=self._size, timeout=self._connect_timeout
        )

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=2.0)
            except TimeoutError:
                self._pool.terminate()

    async def list_bids(self, item_id: str, limit: int, before_seq: int) -> BidPage:
        """Bids with seq < before_seq (0: from the newest), newest first; `ItemNotFound` if no such item."""

        async def page(conn: Any) -> BidPage:
            rows = await conn.fetch(_PAGE, item_id, before_seq or NEWEST, limit + 1)
            if not rows and not await conn.fetchval(_ITEM_EXISTS, item_id):
                raise ItemNotFound(item_id)
            bids = [BidRecord(*row) for row in rows[:limit]]
            more = len(rows) > limit
            return BidPage(bids, bids[-1].seq if more else 0)

        return await self._run(page)

    async def ping(self) -> bool:
        async def select_one(conn: Any) -> bool:
            return bool(await conn.fetchval("SELECT 1") == 1)

        try:
            return await self._run(select_one)
        except ArchiveUnavailable:
            return False

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        try:
            conn = await self._pool.acquire(timeout=self._connect_timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveUnavailable(f"cannot connect: {exc!r}") from exc
        try:
            return await within(self._timeout, conn, work)
        except ArchiverError:
            raise
        except DeadlineExceeded as exc:  # `within` has dropped the connection already
            raise ArchiveUnavailable(str(exc)) from exc
        except Exception as exc:
            with contextlib.suppress(asyncpg.InterfaceError):  # released already if it broke
                conn.terminate()
            raise ArchiveUnavailable(repr(exc)) from exc
        finally:
            await self._pool.release(conn, timeout=1.0)
