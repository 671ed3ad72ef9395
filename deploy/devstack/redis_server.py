"""A real `redis-server` on a free port, append-only file in the data directory.

AOF with `appendfsync everysec` is the durability the bidder is designed for (at most one second of writes
lost on a machine crash, nothing on a clean stop); RDB snapshots are off so restarts load exactly the AOF.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.errors import MissingBinaryError
from devstack.ports import free_port
from devstack.server_base import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Sequence


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
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
