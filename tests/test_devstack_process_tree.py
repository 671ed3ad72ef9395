"""`kill()`, `pause()` and `resume()` reach every process a server forked (PostgreSQL's backends too).

PostgreSQL's backends and auxiliary processes leave the postmaster's process group, so signalling the
group alone froze only the postmaster (open connections kept answering) and killed only the postmaster
(backends stayed attached to the shared memory). These tests hold an open connection, whose backend is
exactly such a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack.server_base import process_tree
from devstack.servers import PostgresServer
from tests.conftest import scaled, server_sink, temp_data_dir


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (R, S, T for stopped, Z, ...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[PostgresServer]:
    with temp_data_dir("auction-postgres-tree-") as data_dir:
        server = PostgresServer(data_dir, sink=server_sink(), start_timeout=scaled(30), stop_grace=scaled(10))
        try:
            await server.start()
            yield server
        finally:
            await server.stop()
            server.remove_cluster()


async def test_pause_freezes_the_backends_of_open_connections_until_resume(postgres: PostgresServer) -> None:
    """Paused: an already open connection gets no answer (its backend is stopped too); resumed: it does."""
    conn = await asyncpg.connect(postgres.dsn, timeout=scaled(10))
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        assert postgres.pid is not None
        assert backend in process_tree(postgres.pid)
        postgres.pause()
        try:
            assert _state(backend) == "T"
            assert _state(postgres.pid) == "T"
            query = asyncio.ensure_future(conn.fetchval("SELECT 1"))
            done, _ = await asyncio.wait({query}, timeout=scaled(0.5))
            assert not done, "a backend answered while the server was paused"
        finally:
            postgres.resume()
        assert await asyncio.wait_for(query, scaled(10)) == 1
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=scaled(5))


async def test_kill_ends_every_postgres_process_and_restart_recovers(postgres: PostgresServer) -> None:
    """`kill()` SIGKILLs the postmaster and its backends; `restart()` runs crash recovery, data intact."""
    conn = await asyncpg.connect(postgres.dsn, timeout=scaled(10))
    await conn.execute("CREATE TABLE IF NOT EXISTS crash_survivor (v bigint)")
    await conn.execute("INSERT INTO crash_survivor VALUES (7)")
    assert postgres.pid is not None
    tree = process_tree(postgres.pid)
    assert len(tree) > 2  # postmaster, backend, checkpointer, walwriter, ...
    port = postgres.port
    postgres.kill()
    assert await asyncio.wait_for(postgres.wait(), scaled(10)) == -signal.SIGKILL
    conn.terminate()
    for _ in range(50):
        if all(_state(pid) in (None, "Z") for pid in tree):
            break
        await asyncio.sleep(0.1)
    assert all(_state(pid) in (None, "Z") for pid in tree), [(pid, _state(pid)) for pid in tree]
    await postgres.restart()
    assert postgres.port == port
    log = postgres.log_path.read_text()
    assert "not properly shut down" in log  # it crashed: the restart ran crash recovery
    assert "unexpected postmaster exit" not in log  # no backend outlived the kill to say so
    again = await asyncpg.connect(postgres.dsn, timeout=scaled(10))
    try:
        assert await again.fetchval("SELECT sum(v) FROM crash_survivor") == 7
    finally:
        await again.close()
