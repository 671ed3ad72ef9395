"""A real `redis-server` on a free port, append-only file in the data directory; optionally a replica.

AOF with `appendfsync everysec` is the durability the bidder is designed for: a killed Redis process loses
nothing (each write is in the kernel's hands before the reply), a machine crash at most about a second of
writes. `fsync="always"` fsyncs the AOF before every reply instead (nothing acknowledged is lost on a
machine crash, at a cost the durability benchmark measures). RDB snapshots are off so restarts load
exactly the AOF. `RedisReplica` is a second server that replicates a primary (`replicaof`), with its own
port, data directory and AOF, for the bidder's `BIDDER_REDIS_WAIT_REPLICAS` option.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from devstack.errors import MissingBinaryError, StartError
from devstack.ports import free_port
from devstack.server_base import ServerProcess

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from devstack.child import LineSink

Fsync = Literal["everysec", "always"]
FSYNC_CHOICES: tuple[str, ...] = get_args(Fsync)


def redis_server_binary() -> str:
    """Locate `redis-server` (installed by `deploy/install-servers.sh`)."""
    found = shutil.which("redis-server") or next(
        (str(p) for p in (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server")) if p.exists()), None
    )
    if found is None:
        raise MissingBinaryError("redis-server is missing: run `make setup` (deploy/install-servers.sh)")
    return found


class RedisServer(ServerProcess):
    """`redis-server` bound to 127.0.0.1 on a free port; `url` is the redis:// URL of database 0."""

    name = "redis"
    ready_text = "Ready to accept connections"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        fsync: Fsync = "everysec",
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(data_dir, sink=sink, start_timeout=start_timeout, stop_grace=stop_grace, host=host)
        if fsync not in FSYNC_CHOICES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_CHOICES)}, not {fsync!r}")
        self.fsync: Fsync = fsync

    @property
    def url(self) -> str:
        """redis://host:port/0 of the running server."""
        return f"redis://{self.host}:{self.port}/0"

    def _pick_ports(self) -> None:
        self.port = free_port(self.host)

    def _command(self) -> Sequence[str]:
        return [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            # A replica that (re)connects gets its copy at once, not after the default 5 s wait for others.
            "--repl-diskless-sync-delay", "0",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip


class RedisReplica(RedisServer):
    """A `redis-server` replicating `primary` (read-only), with the primary's AOF settings.

    `start()` returns once the first synchronisation is done (`master_link_status:up`), so a bidder that
    waits for one replica can be started right after it. `restart()` (the supervisor's) does not wait for
    the link: the replica resynchronises by itself whenever the primary is reachable, also when that is
    later, and a primary that is down at that moment must not make the replica's restart fail.
    """

    name = "redis-replica"
    ready_text = "Ready to accept connections"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        primary: RedisServer,
        *,
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
    ) -> None:
        super().__init__(
            data_dir, fsync=primary.fsync, sink=sink, start_timeout=start_timeout, stop_grace=stop_grace,
            host=primary.host,
        )  # fmt: skip
        self.primary = primary

    def _command(self) -> Sequence[str]:
        return [*super()._command(), "--replicaof", self.primary.host, str(self.primary.port)]

    async def start(self) -> None:
        """Start, then wait until the first synchronisation with the primary is complete."""
        await super().start()
        try:
            await self.wait_synced(self.start_timeout)
        except BaseException:
            await self.stop()  # never leave a half-started server behind
            raise

    async def wait_synced(self, within: float) -> None:
        """Return once the link to the primary is up (INFO replication); StartError after `within` s."""
        client = redis_asyncio.Redis.from_url(self.url, decode_responses=True)
        deadline = time.monotonic() + within
        try:
            while True:
                try:
                    info = await client.info("replication")
                    if info.get("master_link_status") == "up":
                        return
                except RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise StartError(self.name, f"no link to the primary within {within:g} s", [])
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()
