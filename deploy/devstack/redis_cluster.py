"""A real Redis Cluster of three masters (no replicas) on free ports, for the tests and experiments.

Each node is the same `redis-server` the stack runs (`RedisServer`), with cluster mode on, its node table
(`cluster-config-file`) in its own data directory and its cluster bus on a second probed free port
(`cluster-port`, Redis 7.0+, instead of the default port + 10000, which may be taken or beyond 65535).
Once the three are up, each gets an even third of the 16384 slots (CLUSTER ADDSLOTSRANGE), the first
meets the other two (CLUSTER MEET with the bus port), and `start` returns when every node reports
`cluster_state:ok` with three known nodes::

    async with RedisClusterServers(tmp / "cluster") as cluster:
        client = RedisCluster.from_url(cluster.url)

What this does not give: replicas, failover, resharding (see deploy/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from devstack.errors import StartError
from devstack.ports import free_port, port_is_free
from devstack.redis_server import RedisServer
from devstack.started import Started

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devstack.child import LineSink

HASH_SLOTS = 16384
NODE_TIMEOUT_MS = 5000


class RedisClusterNode(RedisServer):
    """One cluster-enabled `redis-server`: client port plus cluster bus port, node table in `data_dir`."""

    name = "redis-cluster"
    bus_port: int = 0

    @property
    def url(self) -> str:
        """redis://host:port (no database: a cluster has only database 0)."""
        return f"redis://{self.host}:{self.port}"

    @property
    def node_table(self) -> Path:
        """The node's own `cluster-config-file` (ids, epochs, slots); it rewrites it itself."""
        return self.data_dir / "nodes.conf"

    def _pick_ports(self) -> None:
        self.port = free_port(self.host)
        self.bus_port = free_port(self.host)
        while self.bus_port == self.port or not port_is_free(self.bus_port, self.host):
            self.bus_port = free_port(self.host)

    def _command(self) -> Sequence[str]:
        return [
            *super()._command(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.node_table),
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # The tests own every slot; never refuse reads on a partial table while it is being built.
            "--cluster-require-full-coverage", "no",
        ]  # fmt: skip

    async def _prepare(self) -> None:
        await super()._prepare()
        # A node table from an earlier run names other ports; a new cluster starts from none.
        if self.port == 0:
            self.node_table.unlink(missing_ok=True)


class RedisClusterServers(Started):
    """Three cluster-enabled masters that form one cluster, each owning a third of the slots.

    `url` is the first node's URL, enough for a cluster-aware client (it learns the others from it);
    `urls` lists all three.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        masters: int = 3,
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.start_timeout = start_timeout
        self.nodes = [
            RedisClusterNode(self.data_dir / f"node{i}", sink=sink, start_timeout=start_timeout, host=host)
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @staticmethod
    def slot_ranges(masters: int) -> list[tuple[int, int]]:
        """Contiguous, even slot ranges, one per master (inclusive bounds), as redis-cli would assign."""
        bounds = [HASH_SLOTS * i // masters for i in range(masters + 1)]
        return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]

    async def start(self) -> None:
        """Start every node, assign the slots, join them, and wait for `cluster_state:ok` everywhere."""
        try:
            await asyncio.gather(*(node.start() for node in self.nodes))
            await self._form()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)

    async def _form(self) -> None:
        clients = [Redis.from_url(node.url) for node in self.nodes]
        try:
            for client, (first, last) in zip(clients, self.slot_ranges(len(self.nodes)), strict=True):
                await _cluster(client, "ADDSLOTSRANGE", first, last)
            seed = clients[0]
            for node in self.nodes[1:]:
                await _cluster(seed, "MEET", node.host, node.port, node.bus_port)
            await self._until_ok(clients)
        finally:
            for client in clients:
                await client.aclose()

    async def _until_ok(self, clients: list[Redis]) -> None:
        deadline = time.monotonic() + self.start_timeout
        states: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            states = [await _cluster_info(client) for client in clients]
            if all(_formed(state, len(clients)) for state in states):
                return
            await asyncio.sleep(0.05)
        raise StartError("redis-cluster", f"not formed within {self.start_timeout:.1f}s: {states}")

    async def owner_of(self, key: str | bytes) -> int:
        """The index (in `nodes`) of the master serving `key`, as the cluster says (CLUSTER SLOTS)."""
        client = Redis.from_url(self.url)
        try:
            slot = int(await _cluster(client, "KEYSLOT", key))
            table = await _cluster(client, "SLOTS")
        finally:
            await client.aclose()
        ports = [node.port for node in self.nodes]
        for first, last, master, *_replicas in table:
            if int(first) <= slot <= int(last):
                return ports.index(int(master[1]))
        raise LookupError(f"no master serves slot {slot}")


async def _cluster(client: Redis, *args: str | int | bytes) -> Any:
    """`CLUSTER <args>` on one node, its reply as the server sent it."""
    return await client.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]


async def _cluster_info(client: Redis) -> dict[str, str]:
    with contextlib.suppress(RedisError, OSError):
        raw = await _cluster(client, "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)
    return {}


def _formed(state: dict[str, str], nodes: int) -> bool:
    return (
        state.get("cluster_state") == "ok"
        and state.get("cluster_slots_assigned") == str(HASH_SLOTS)
        and state.get("cluster_known_nodes") == str(nodes)
    )
