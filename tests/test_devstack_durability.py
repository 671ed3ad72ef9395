"""Redis's durability options in the dev stack: `appendfsync always`, and a supervised replica."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio import BlockingConnectionPool

from devstack.servers import RedisReplica, RedisServer
from devstack.stack import Stack, UpOptions, _bidder, _relay
from devstack.summary import READY_MARKER
from tests.conftest import running_server, scaled
from tests.test_devstack import _cmdline, _descendants, _devstack_up

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def test_redis_fsync_is_everysec_by_default_and_always_when_asked() -> None:
    """The factory's servers run with the AOF policy asked for (and everysec without one)."""
    async with running_server(RedisServer, "auction-redis-fsync-") as default, _client(default.url) as client:
        assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
    async with (
        running_server(RedisServer, "auction-redis-always-", fsync="always") as always,
        _client(always.url) as client,
    ):
        assert await client.config_get("appendfsync") == {"appendfsync": "always"}
        assert await client.config_get("appendonly") == {"appendonly": "yes"}


def test_an_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    """`no` (leave it to the kernel) is not offered: it would lose up to 30 s on a machine crash."""
    with pytest.raises(ValueError, match="everysec, always"):
        RedisServer(tmp_path, fsync="no")  # type: ignore[arg-type]


async def test_a_replica_is_in_sync_when_started_and_resyncs_after_a_restart() -> None:
    """`RedisReplica` starts once synchronised, with the primary's AOF policy and its own data; after
    a restart on the same port it catches up with what the primary wrote meanwhile."""
    async with (
        running_server(RedisServer, "auction-redis-primary-", fsync="always") as primary,
        _client(primary.url) as writer,
    ):
        await writer.set("before", "1")
        async with running_server(RedisReplica, "auction-redis-replica-", primary=primary) as replica:
            assert replica.port != primary.port
            assert replica.data_dir != primary.data_dir
            async with _client(replica.url) as reader:
                assert await reader.get("before") == "1"  # synchronised before start() returned
                assert await reader.config_get("appendfsync") == {"appendfsync": "always"}
            await replica.stop()
            await writer.set("meanwhile", "2")
            assert await writer.wait(1, 100) == 0  # nobody to confirm it
            port = replica.port
            await replica.restart()
            await replica.wait_synced(scaled(30))
            assert replica.port == port
            assert await writer.wait(1, int(scaled(5) * 1000)) == 1
            async with _client(replica.url) as reader:
                assert await reader.get("meanwhile") == "2"


def test_the_bidder_and_relay_wait_for_one_replica_exactly_when_the_stack_runs_one(tmp_path: Path) -> None:
    """`up --redis-replica` builds a bidder with BIDDER_REDIS_WAIT_REPLICAS=1 and a relay with
    RELAY_REDIS_WAIT_REPLICAS=1 (it publishes only what the replica holds); without it, neither is set."""
    with_replica = Stack(UpOptions(state_dir=tmp_path / "a", redis_replica=True))
    without = Stack(UpOptions(state_dir=tmp_path / "b"))
    assert with_replica.ctx.redis_replica is not None
    assert [s.name for s in with_replica.ctx.servers] == ["redis", "redis-replica", "nats", "postgres"]
    assert _bidder(with_replica.ctx).extra_env["BIDDER_REDIS_WAIT_REPLICAS"] == "1"
    assert "BIDDER_REDIS_WAIT_REPLICAS" not in _bidder(without.ctx).extra_env
    assert _relay(with_replica.ctx).extra_env["RELAY_REDIS_WAIT_REPLICAS"] == "1"
    assert "RELAY_REDIS_WAIT_REPLICAS" not in _relay(without.ctx).extra_env
    assert [s.name for s in without.ctx.servers] == ["redis", "nats", "postgres"]


async def test_up_runs_a_supervised_replica_and_fsync_always_when_asked(tmp_path: Path) -> None:
    """`up --redis-replica --redis-fsync always`: both Redis servers fsync always, the replica follows
    the primary, and a SIGKILLed replica is restarted by the supervisor and confirms writes again."""
    state = tmp_path / "state"
    async with _devstack_up(state, "--servers-only", "--redis-replica", "--redis-fsync", "always") as up:
        await up.wait_for(READY_MARKER, scaled(90))
        endpoints = json.loads((state / "endpoints.json").read_text())
        # One connection, so WAIT counts this client's own writes.
        pool = BlockingConnectionPool.from_url(
            endpoints["redis"], max_connections=1, decode_responses=True, socket_timeout=scaled(30)
        )
        primary = redis_asyncio.Redis(connection_pool=pool)
        replica = redis_asyncio.Redis.from_url(endpoints["redis_replica"], decode_responses=True)
        try:
            assert (await replica.info("replication"))["master_link_status"] == "up"
            for client in (primary, replica):
                assert await client.config_get("appendfsync") == {"appendfsync": "always"}
            await primary.set("k", "v")
            assert await primary.wait(1, int(scaled(5) * 1000)) == 1
            assert await replica.get("k") == "v"
            # redis-server retitles itself `redis-server 127.0.0.1:PORT`.
            port = endpoints["redis_replica"].rsplit(":", 1)[1].split("/", 1)[0]
            replica_pids = [pid for pid in _descendants(up.proc.pid) if f":{port}" in _cmdline(pid)]
            assert len(replica_pids) == 1
            os.kill(replica_pids[0], signal.SIGKILL)
            await up.wait_for("redis-replica restarted", scaled(60))
            await primary.set("after", "yes")
            assert await primary.wait(1, int(scaled(10) * 1000)) == 1
            async with _client(endpoints["redis_replica"]) as restarted:  # the old connection died with it
                assert await restarted.get("after") == "yes"
        finally:
            await primary.aclose()
            await pool.disconnect()
            await replica.aclose()
        up.proc.send_signal(signal.SIGINT)
        assert await up.finish(scaled(60)) == 0, "\n".join(up.lines[-40:])
    assert any("redis-replica exited unexpectedly" in line for line in up.lines)


@contextlib.asynccontextmanager
async def _client(url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
