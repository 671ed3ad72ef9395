"""Shared test fixtures: real Redis, NATS (JetStream) and Postgres on free ports, one of each per session.

They are the same classes `python -m devstack up` runs (`devstack.servers`), started once and waited for by
their own ready signal; data lives in temporary directories under /tmp that are removed at the end. Nothing
here knows about our services: their fixtures build on these (see `devstack.processes`).

Timeouts are multiples of `TIME_UNIT` (env `AUCTION_TEST_TIME_UNIT`, default 1) so a slow machine can scale
them all at once instead of turning into flaky tests. Set `AUCTION_TEST_SERVER_LOGS=1` to see the servers'
output on stderr (it is always in `<data_dir>/<name>.log`).
"""

from __future__ import annotations

import os

# gRPC's fork handlers crash a child spawned with preexec_fn while calls are in flight (SIGSEGV about
# 8% of the time); the tests spawn servers that way, and never use gRPC in a forked child.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest_asyncio
import redis.asyncio as redis_asyncio

from devstack.child import LineSink, PrefixPrinter, discard
from devstack.server_base import ServerProcess
from devstack.servers import NatsServer, PostgresServer, RedisServer

S = TypeVar("S", bound=ServerProcess)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

TIME_UNIT = float(os.environ.get("AUCTION_TEST_TIME_UNIT", "1"))
"""Multiply every test timeout by this."""


def scaled(seconds: float) -> float:
    """`seconds` in test time: multiplied by `TIME_UNIT`."""
    return seconds * TIME_UNIT


def server_sink() -> LineSink | None:
    """Where server output goes besides the log file: stderr when AUCTION_TEST_SERVER_LOGS is set."""
    return PrefixPrinter(sys.stderr) if os.environ.get("AUCTION_TEST_SERVER_LOGS") else None


def service_sink() -> LineSink:
    """`server_sink()` for our services, which would otherwise print to the terminal: dropped by default."""
    return server_sink() or discard


@contextlib.contextmanager
def temp_data_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under /tmp, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def running_server(server_class: type[S], prefix: str, **options: Any) -> AsyncIterator[S]:
    """A real server of `server_class` in a fresh temporary data directory, stopped and removed after.

    `options` go to the class as is: `RedisServer`'s `fsync="always"`, `RedisReplica`'s `primary`."""
    with temp_data_dir(prefix) as data_dir:
        server = server_class(data_dir, sink=server_sink(), start_timeout=scaled(30), **options)
        try:
            await server.start()
            yield server
        finally:
            await server.stop()
            if isinstance(server, PostgresServer):
                server.remove_cluster()  # it may live outside data_dir (see PostgresServer)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_server() -> AsyncIterator[RedisServer]:
    """A session-wide `redis-server` (AOF, everysec) on a free port."""
    async with running_server(RedisServer, "auction-redis-") as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def nats_server() -> AsyncIterator[NatsServer]:
    """A session-wide `nats-server -js` (file store) on a free port."""
    async with running_server(NatsServer, "auction-nats-") as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_server() -> AsyncIterator[PostgresServer]:
    """A session-wide PostgreSQL with database `auction` (see `PostgresServer.dsn`) on a free port."""
    async with running_server(PostgresServer, "auction-pg-") as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis_asyncio.Redis]:
    """A client of the session Redis, flushed before the test (so tests sharing the server start empty)."""
    client = redis_asyncio.Redis.from_url(redis_server.url)
    try:
        await client.flushall()
        yield client
    finally:
        await client.aclose()
