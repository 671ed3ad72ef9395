"""The archive schema on a real PostgreSQL: applied once in order, tracked, and guarded against edits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from archiver.errors import MigrationError
from archiver.migrations import load, migrate
from tests.archive_fixtures import fresh_database

__all__ = ["fresh_database"]


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
    assert {"items", "bids", "other_events", "dead_letters"} <= tables


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
