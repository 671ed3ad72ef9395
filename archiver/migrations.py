"""Plain SQL migrations, applied in order at start and tracked in `schema_migrations`.

Files are `archiver/sql/NNNN_name.sql`, numbered 1, 2, 3, ... without gaps. Each is applied in
its own transaction together with its row in `schema_migrations` (version, name, SHA-256), so a crash
leaves either all of it or none. A session advisory lock makes concurrent archivers apply each file once.
A file that changed after it was applied stops the start: the database no longer matches the code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import structlog

from archiver.errors import MigrationError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

log = structlog.get_logger(__name__)
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# pg_advisory_lock key: "archiver" as a number, shared by every archiver instance.
LOCK_KEY = 0x61726368697665


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled() -> Traversable:
    return resources.files("archiver") / "sql"


def load(directory: Traversable | None = None) -> list[Migration]:
    """The migrations in `directory` (default: the bundled ones), in order; checks the numbering."""
    found: list[Migration] = []
    for entry in (directory or bundled()).iterdir():
        match = FILE_NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"migration file name {entry.name!r} is not NNNN_name.sql")
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (found {migration.version:04d})")
    return found


async def migrate(conn: Any, migrations: list[Migration]) -> list[Migration]:
    """Apply what is not applied yet; return what was applied now. `conn` is an asyncpg connection."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now()
               )"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        applied = {row["version"]: row for row in rows}
        for version, row in applied.items():
            if version > len(migrations):
                raise MigrationError(f"the database has migration {version:04d}, which this code lacks")
            if row["checksum"] != migrations[version - 1].checksum:
                raise MigrationError(f"migration {version:04d}_{row['name']} changed after it was applied")
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", version=migration.version, name=migration.name)
            done.append(migration)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
