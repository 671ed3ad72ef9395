"""The real servers the stack and the tests run, in one import.

Each runs the actual binary on a probed free port with its data in a directory you give it, and is ready only
once the server says so::

    async with RedisServer(tmp / "redis") as redis:
        client = redis_asyncio.from_url(redis.url)

All share `ServerProcess`'s life cycle: `start()`, `stop()`, `restart()` (same port, same data), `kill()`,
`pause()`/`resume()`, `wait()`. `RedisServer(..., fsync="always")` fsyncs its AOF before every reply;
`RedisReplica(data_dir, primary)` replicates a running `RedisServer`.
"""

from __future__ import annotations

from devstack.nats_server import NatsServer
from devstack.postgres_server import PostgresServer
from devstack.redis_server import RedisReplica, RedisServer
from devstack.server_base import ServerProcess

__all__ = ["NatsServer", "PostgresServer", "RedisReplica", "RedisServer", "ServerProcess"]
