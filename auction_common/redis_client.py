"""One way for every service to get its Redis client: a single server or a Redis Cluster, from settings.

`make_redis(url, cluster=...)` returns `redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`.
Our code works with either (`AnyRedis`) because every command it sends names keys of one hash tag (the
item's partition, `auction_contract.redis_layout`), so each command, Lua call and per-partition pipeline
entry goes to the one node owning that slot; non-transactional pipelines are split per node by the
cluster client.

Differences a caller must know:
- Cluster: `url` is any one node (the client discovers the others); the database must be 0.
- Single server: with `max_connections` the pool blocks (up to `pool_timeout`) when all connections are
  busy. The cluster client keeps `max_connections` per node and fails at once with `MaxConnectionsError`
  instead, so give it headroom.
- Transactions: redis-py 8.1's cluster pipeline with `transaction=True` runs every command given to it on
  a new thread with an event loop of its own while the caller's loop waits (about 30 ms per WATCH/GET/
  MULTI/EXEC here), refuses TIME, and its `exists` returns the pipeline instead of a reply. One slot's
  WATCH/GET/MULTI/EXEC does give the right result, but no server should run that on its hot path: the
  bidder refuses `strategy=watch` with cluster mode, and the rebuild writes with one Lua call instead.
- Cluster pipelines (redis-py 8.1): the `evalsha` method is blocked (queue `execute_command("EVALSHA", ...)`,
  which routes by the keys); awaiting the pipeline object re-initializes it and drops what was queued (so
  never pass it as `client=` to a script object); scripts are not loaded before EXEC, so a node without
  the script answers NOSCRIPT for its entries. Commands with "movable" keys (XREADGROUP) make the client
  ask a server for their keys (COMMAND GETKEYS) first unless given `target_nodes`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

AnyRedis: TypeAlias = Redis | RedisCluster


def make_redis(
    url: str,
    *,
    cluster: bool = False,
    max_connections: int | None = None,
    pool_timeout: float = 5.0,
    **options: Any,
) -> AnyRedis:
    """A client for `url`: `RedisCluster` when `cluster`, else `Redis` (with a blocking pool when bounded).

    `options` (socket timeouts, `decode_responses`, ...) go to the client or its connections as is.
    """
    if cluster:
        if max_connections is not None:
            options["max_connections"] = max_connections
        return RedisCluster.from_url(url, **options)
    if max_connections is None:
        return Redis.from_url(url, **options)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout, **options
    )
    return Redis(connection_pool=pool)


async def close_redis(client: AnyRedis) -> None:
    """Close the client and its connections (a `Redis` given a pool does not own it, so that too)."""
    await client.aclose()
    if isinstance(client, Redis):
        await client.connection_pool.disconnect()
