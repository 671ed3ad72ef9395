"""A real 3-node NATS cluster with JetStream on free ports, for the tests: kill a node, restart it.

Each node is the `nats-server` the stack runs (`NatsServer`, from the pinned wheel) with a name of its own
(`server_name`, which JetStream's Raft groups need), its own JetStream store, a cluster listener on a
probed free port and routes to the other two. `start` returns once every node agrees on one JetStream meta
leader (from each node's `/jsz` monitoring endpoint), so streams with replicas can be created at once::

    async with NatsClusterServers(tmp / "nats") as cluster:
        nc = await nats.connect(servers=cluster.urls)
        ...
        await cluster.kill(1)       # SIGKILL, like a crash
        await cluster.restart(1)    # same ports, same store: it catches up from the others

Ports are all chosen before the first node starts, since every node's routes name the others' cluster
ports. If a node must re-pick its ports (a bind race), the others keep soliciting its old route in vain,
but the node itself solicits theirs, and routes work in both directions, so the cluster still forms.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from devstack.errors import StartError
from devstack.nats_server import NatsServer
from devstack.ports import free_port
from devstack.started import Started

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devstack.child import LineSink

CLUSTER_NAME = "auction"


class NatsClusterNode(NatsServer):
    """One `nats-server -js` of a cluster: client, monitoring and cluster ports, routes to its peers."""

    name = "nats-cluster"
    cluster_port: int = 0

    def __init__(self, data_dir: str | Path, server_name: str, **options: Any) -> None:
        super().__init__(data_dir, **options)
        self.server_name = server_name
        self.peers: list[NatsClusterNode] = []

    @property
    def route_url(self) -> str:
        return f"nats://{self.host}:{self.cluster_port}"

    def _pick_ports(self) -> None:
        taken: set[int] = set()
        ports: list[int] = []
        while len(ports) < 3:
            port = free_port(self.host)
            if port not in taken:
                taken.add(port)
                ports.append(port)
        self.port, self.monitor_port, self.cluster_port = ports

    def _command(self) -> Sequence[str]:
        return [
            *super()._command(),
            "--server_name", self.server_name,
            "--cluster_name", CLUSTER_NAME,
            "--cluster", self.route_url,
            "--routes", ",".join(peer.route_url for peer in self.peers),
        ]  # fmt: skip


class NatsClusterServers(Started):
    """Three clustered `nats-server -js` nodes named `n0`, `n1`, `n2`.

    `url` is every client URL, comma-separated (what `RELAY_NATS_URL` / `ARCHIVER_NATS_URL` take);
    `urls` the same as a list.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        size: int = 3,
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.start_timeout = start_timeout
        self.nodes = [
            NatsClusterNode(
                self.data_dir / f"n{i}", f"n{i}", sink=sink, start_timeout=start_timeout, host=host
            )
            for i in range(size)
        ]
        for node in self.nodes:
            node.peers = [peer for peer in self.nodes if peer is not node]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    async def start(self) -> None:
        """Start every node (ports chosen for all first) and wait for a JetStream meta leader."""
        for node in self.nodes:
            node._pick_ports()  # before any starts: each node's routes name the others' ports
        try:
            await asyncio.gather(*(node.start() for node in self.nodes))
            await self.wait_meta_leader()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)

    async def kill(self, index: int) -> None:
        """SIGKILL node `index` (a crash: no goodbye to clients or peers) and reap it."""
        node = self.nodes[index]
        node.kill()
        if node.running:
            await node.wait()

    async def restart(self, index: int) -> None:
        """Start node `index` again on its ports with its store; return once its monitor says healthy."""
        node = self.nodes[index]
        await node.restart()
        deadline = time.monotonic() + self.start_timeout
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{node.monitor_url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise StartError(node.name, f"{node.server_name} not healthy within {self.start_timeout:.1f}s")

    async def jsz(self, index: int, **params: str) -> dict[str, Any]:
        """Node `index`'s `/jsz` monitoring document (JetStream state as that node sees it)."""
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            response = await client.get(f"{self.nodes[index].monitor_url}/jsz", params=params)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

    async def meta_leader(self, index: int) -> str:
        """The meta leader's server name as node `index` sees it ("" while there is none)."""
        meta = (await self.jsz(index)).get("meta_cluster") or {}
        return str(meta.get("leader") or "")

    async def wait_meta_leader(self, among: Sequence[int] | None = None) -> str:
        """Wait until the running nodes (or `among`) all name the same meta leader; return its name."""
        indexes = list(among) if among is not None else [i for i, n in enumerate(self.nodes) if n.running]
        deadline = time.monotonic() + self.start_timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            try:
                seen = [await self.meta_leader(i) for i in indexes]
            except httpx.HTTPError:
                seen = []
            if seen and seen[0] and len(set(seen)) == 1:
                return seen[0]
            await asyncio.sleep(0.1)
        raise StartError(
            "nats-cluster", f"no agreed JetStream meta leader within {self.start_timeout:.1f}s: {seen}"
        )
