"""The live path as it runs in production: a bidder process and fan-out processes on the session's Redis.

`FanoutStack` creates items and places bids through the bidder's gRPC API (the edge adds nothing the
fan-out sees), starts extra fan-out processes with their own settings, and reads a fan-out's metrics.
`RawViewer` is a plain websockets client that records every message (batches flattened): tests check
the server's own guarantees with it, so no client-side de-duplication can hide a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from devstack.child import LineSink
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import RedisServer
from devstack.services import bidder_process
from devstack.services_fanout import fanout_process
from tests.conftest import scaled, service_sink

FANOUT_TEST_ENV = {
    "FANOUT_LOG_LEVEL": "warning",
    "FANOUT_PING_INTERVAL_SECONDS": "5",
    "FANOUT_CLOSE_TIMEOUT_SECONDS": "5",
    "FANOUT_SHUTDOWN_TIMEOUT_SECONDS": "2",
    "FANOUT_ALLOWED_ORIGINS": "https://viewer.example",
}


_CONTROL = frozenset({"snapshot", "reset", "error"})


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0, every: float = 0.02) -> None:
    """Poll `check` until it is true, within `within` test seconds (for state only a scrape can see)."""
    async with asyncio.timeout(scaled(within)):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(every)


@dataclass
class FanoutStack:
    redis_url: str
    bidder_target: str
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    port: int
    logs: Path
    sink: LineSink
    processes: list[ServiceProcess] = field(default_factory=list)
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(2))
    _next_amount: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, item_id: str, since: int | None = None, port: int | None = None) -> str:
        base = f"ws://127.0.0.1:{port or self.port}/ws/items/{item_id}"
        return base if since is None else f"{base}?since={since}"

    async def start_fanout(
        self, port: int | None = None, env: Mapping[str, str] | None = None, *, sharded: bool = False
    ) -> ServiceProcess:
        """Another fan-out process (on this stack's port unless told otherwise); stopped at teardown."""
        name = f"fanout-{next(self._names)}"
        process = fanout_process(
            self.redis_url, self.bidder_target, port or self.port, sharded_pubsub=sharded,
            sink=self.sink, log_path=self.logs / f"{name}.log", extra_env={**FANOUT_TEST_ENV, **(env or {})},
            name=name,
        )  # fmt: skip
        process.start_timeout = scaled(30)
        process.stop_grace = scaled(5)
        await process.start()
        self.processes.append(process)
        return process

    async def create_item(self, *, starting_price: int = 100, min_increment: int = 10) -> str:
        ends = int(time.time()) + 3600
        reply = await self.stub.CreateItem(
            bidder_pb2.CreateItemRequest(
                title="Lamp", description="A lamp", currency="USD", starting_price=starting_price,
                min_increment=min_increment, ends_at=Timestamp(seconds=ends),
            )
        )  # fmt: skip
        self._next_amount[reply.item.id] = starting_price
        return reply.item.id

    async def bid(self, item_id: str, count: int = 1, *, bidder: str = "alice") -> list[int]:
        """Send `count` rising bids in one `PlaceBids` call; return the seqs of those accepted.

        Bids of one call are applied in order, so all are accepted unless another caller outbids them.
        """
        amount = self._next_amount[item_id]
        bids = [
            bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount + 10 * i)
            for i in range(count)
        ]
        reply = await self.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
        accepted = [o.accepted for o in reply.outcomes if o.HasField("accepted")]
        assert accepted or count > 1, reply
        self._next_amount[item_id] = max([amount + 10 * count] + [a.amount + 10 for a in accepted])
        return sorted(a.seq for a in accepted)

    async def bid_until(self, item_id: str, total: int, sizes: list[int]) -> int:
        """Bid in calls of `sizes` (cycled) until `total` bids were accepted; return the last seq."""
        accepted, last, index = 0, 0, 0
        while accepted < total:
            seqs = await self.bid(item_id, min(sizes[index % len(sizes)], total - accepted))
            index += 1
            accepted += len(seqs)
            last = max([last, *seqs])
        return last

    async def metrics(self, port: int | None = None) -> dict[str, float]:
        """One fan-out process's metrics (with several on a port, whichever answers)."""
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            text = (await client.get(f"http://127.0.0.1:{port or self.port}/metrics")).text
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


@pytest.fixture(scope="module")
async def fanout_stack(redis_server: RedisServer) -> AsyncIterator[FanoutStack]:
    """A bidder process (Lua strategy) and one fan-out process on a free port, for the module."""
    logs = Path(tempfile.mkdtemp(prefix="auction-fanout-"))
    sink = service_sink()
    bidder_port = free_port()
    bidder = bidder_process(redis_server.url, bidder_port, sink=sink, log_path=logs / "bidder.log")
    bidder.start_timeout = scaled(30)
    await bidder.start()
    target = f"127.0.0.1:{bidder_port}"
    channel = grpc.aio.insecure_channel(target)
    stack = FanoutStack(
        redis_server.url, target, bidder_pb2_grpc.BidderServiceStub(channel), free_port(), logs, sink
    )
    try:
        await stack.start_fanout()
        yield stack
    finally:
        for process in reversed(stack.processes):
            await process.stop()
        await channel.close(grace=None)
        await bidder.stop()


@dataclass
class RawViewer:
    ws: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    arrivals: dict[int, float] = field(default_factory=dict)
    frames: int = 0
    # Each frame's `server_time` (None if a frame had none).
    server_times: list[str | None] = field(default_factory=list)
    close_code: int | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, **options: Any) -> RawViewer:
        ws = await connect(url, proxy=None, compression=None, open_timeout=scaled(10), **options)
        viewer = cls(ws)
        viewer._task = asyncio.get_running_loop().create_task(viewer._read())
        return viewer

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                now = time.monotonic()
                self.frames += 1
                message = orjson.loads(frame)
                # Every frame carries the fan-out's clock (CONTRACT.md); kept aside, not part of events.
                self.server_times.append(message.pop("server_time", None))
                batch = message["events"] if message.get("type") == "batch" else [message]
                for event in batch:
                    self.messages.append(event)
                    if event.get("type") not in _CONTROL:
                        self.seqs.append(event["seq"])
                        self.arrivals[event["seq"]] = now
                self._changed.set()
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
        else:
            self.close_code = self.ws.close_code
        self._changed.set()

    @property
    def event_seqs(self) -> list[int]:
        """The seqs of the item events received (snapshots and control messages left out)."""
        return self.seqs

    @property
    def types(self) -> list[str]:
        return [str(m.get("type")) for m in self.messages]

    async def wait_for(self, predicate: Callable[[RawViewer], bool], within: float = 10.0) -> None:
        """Until `predicate(self)` holds (or the connection is gone), within `within` test seconds."""
        async with asyncio.timeout(scaled(within)):
            while not predicate(self):
                if self._task is not None and self._task.done():
                    assert predicate(self), f"closed with {self.close_code} before: {self.messages[-3:]}"
                self._changed.clear()
                await self._changed.wait()

    async def wait_seq(self, seq: int, within: float = 10.0) -> None:
        await self.wait_for(lambda v: bool(v.event_seqs) and v.event_seqs[-1] >= seq, within)

    async def wait_closed(self, within: float = 10.0) -> int | None:
        await self.wait_for(lambda v: v.close_code is not None, within)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
