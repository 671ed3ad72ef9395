"""The archival path as it runs in production, on servers of its own: bidder, relay and archiver processes.

Each test module that uses `archive_stack` gets its own Redis, NATS (JetStream) and PostgreSQL, so tests
that stop or freeze them never disturb the session servers other tests share. `BidLoad` places paced
bids over the bidder's gRPC API and records every accepted one and every latency; `ArchiveStack`
checks the archive against that record. Settings are shortened (claims, ack waits, timeouts) so the
resilience tests take seconds, with every timeout scaled by `AUCTION_TEST_TIME_UNIT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.archive_load import READY_LINE
from devstack.child import LineSink
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import NatsServer, PostgresServer, RedisServer
from devstack.services import bidder_process
from devstack.services_archive import archiver_env, archiver_process, relay_process
from tests.conftest import scaled, server_sink, service_sink, temp_data_dir

PARTITIONS = 4
# The bidder's operator calls (the rebuild's RestoreItem) are on in this stack, with this token.
ADMIN_TOKEN = "archive-stack-admin-token"
RELAY_TEST_ENV = {
    "RELAY_LOG_LEVEL": "warning",
    "RELAY_ACK_TIMEOUT_SECONDS": "1",
    "RELAY_CLAIM_IDLE_SECONDS": "2",
    "RELAY_CLAIM_INTERVAL_SECONDS": "0.5",
    "RELAY_RETRY_MAX_SECONDS": "0.5",
    "RELAY_NATS_PING_INTERVAL_SECONDS": "1",
    "RELAY_NATS_CONNECT_TIMEOUT_SECONDS": "1",
    "RELAY_MONITOR_INTERVAL_SECONDS": "0.2",
    "RELAY_SHUTDOWN_GRACE_SECONDS": "5",
}
ARCHIVER_TEST_ENV = {
    "ARCHIVER_LOG_LEVEL": "warning",
    "ARCHIVER_ACK_WAIT_SECONDS": "2",
    "ARCHIVER_FETCH_TIMEOUT_SECONDS": "0.5",
    "ARCHIVER_STATEMENT_TIMEOUT_SECONDS": "1",
    "ARCHIVER_CONNECT_TIMEOUT_SECONDS": "1",
    "ARCHIVER_RETRY_MAX_SECONDS": "0.5",
    "ARCHIVER_NATS_PING_INTERVAL_SECONDS": "1",
    "ARCHIVER_HEALTH_INTERVAL_SECONDS": "0.2",
    "ARCHIVER_SHUTDOWN_GRACE_SECONDS": "3",
}


def always_ready() -> Any:
    """A readiness check for processes expected to die on purpose before they would report ready."""

    async def check() -> bool:
        return True

    return check


@dataclass(frozen=True, slots=True)
class Accepted:
    item_id: str
    seq: int
    bid_id: str
    bidder: str
    amount: int


async def create_items(stub: bidder_pb2_grpc.BidderServiceAsyncStub, count: int) -> list[str]:
    """`count` open items (EUR, starting at 100, increment 5) that end in an hour."""
    request = bidder_pb2.CreateItemRequest(
        title="Clock", description="A wall clock", currency="EUR", starting_price=100, min_increment=5,
        ends_at=Timestamp(seconds=int(time.time()) + 3600),
    )  # fmt: skip
    return [(await stub.CreateItem(request)).item.id for _ in range(count)]


@dataclass
class ArchiveStack:
    tmp: Path
    redis: RedisServer
    nats: NatsServer
    postgres: PostgresServer
    bidder_target: str
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    sink: LineSink
    processes: list[ServiceProcess] = field(default_factory=list)
    loads: list[BidLoad] = field(default_factory=list)
    counter: int = 0

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    def _name(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.counter}"

    def relay(
        self, env: Mapping[str, str] | None = None, *, consumer: str | None = None, module: str = "relay"
    ) -> ServiceProcess:
        """A relay process (not started); stopped at teardown if still running."""
        name = self._name("relay")
        process = relay_process(
            self.redis.url, self.nats.url, free_port(), partitions=PARTITIONS, consumer=consumer or name,
            sink=self.sink, log_path=self.tmp / f"{name}.log", extra_env={**RELAY_TEST_ENV, **(env or {})},
            name=name, module=module,
        )  # fmt: skip
        return self._adopt(process)

    def archiver(self, env: Mapping[str, str] | None = None, *, module: str = "archiver") -> ServiceProcess:
        """An archiver process (not started); stopped at teardown if still running."""
        name = self._name("archiver")
        process = archiver_process(
            self.nats.url, self.dsn, free_port(),
            sink=self.sink, log_path=self.tmp / f"{name}.log",
            extra_env={**ARCHIVER_TEST_ENV, **(env or {})}, name=name, module=module,
        )  # fmt: skip
        return self._adopt(process)

    def rebuild_env(self) -> dict[str, str]:
        return archiver_env(
            self.nats.url, self.dsn, bidder_target=self.bidder_target, admin_token=ADMIN_TOKEN
        )

    def _adopt(self, process: ServiceProcess) -> ServiceProcess:
        process.start_timeout = scaled(30)
        process.stop_grace = scaled(10)
        self.processes.append(process)
        return process

    def load(self, items: list[str], rate: float, contenders: int = 1) -> BidLoad:
        """A bid load on these items (not started); its record goes to the stack's directory."""
        load = BidLoad(self.bidder_target, items, rate, self.tmp / f"{self._name('load')}.json", contenders)
        self.loads.append(load)
        return load

    async def create_items(self, count: int) -> list[str]:
        return await create_items(self.stub, count)

    async def archived(self, item_ids: list[str]) -> list[Accepted]:
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch(
                "SELECT item_id, seq, bid_id, bidder, amount FROM bids WHERE item_id = ANY($1::text[])",
                item_ids,
            )
        finally:
            await conn.close()
        return [Accepted(r["item_id"], r["seq"], r["bid_id"], r["bidder"], r["amount"]) for r in rows]

    async def wait_archived(self, accepted: list[Accepted], item_ids: list[str], within: float) -> None:
        """Wait until the archive holds exactly the accepted bids of these items, then check it."""
        deadline = time.monotonic() + scaled(within)
        want = sorted(accepted, key=lambda a: (a.item_id, a.seq))
        got: list[Accepted] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                got = sorted(await self.archived(item_ids), key=lambda a: (a.item_id, a.seq))
                if len(got) >= len(want):
                    break
            await asyncio.sleep(0.2)
        assert len(got) == len(want), f"archived {len(got)} of {len(want)} accepted bids"
        assert got == want

    async def stream_messages(self) -> int:
        """How many messages the AUCTION stream holds (each event once if dedup worked)."""
        nc = await nats.connect(self.nats.url)
        try:
            info = await nc.jetstream().stream_info("AUCTION")
            return int(info.state.messages)
        finally:
            await nc.close()

    async def items_archived(self, item_ids: list[str]) -> set[str]:
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch("SELECT item_id FROM items WHERE item_id = ANY($1::text[])", item_ids)
        finally:
            await conn.close()
        return {r["item_id"] for r in rows}

    def redis_client(self) -> Redis:
        return Redis.from_url(self.redis.url, decode_responses=True)


class BidLoad:
    """Paced bids from a separate process (`auction_bench.archive_load`), one worker per item and contender.

    Out of process on purpose: forking service processes while this process has gRPC calls in flight
    can crash the child (gRPC's fork handlers), and the latencies measured are not disturbed by the test.
    With `contenders` > 1 bids race for each item and some lose (too low); only accepted ones count.
    """

    def __init__(
        self, bidder_target: str, items: list[str], rate: float, out: Path, contenders: int = 1
    ) -> None:
        self._argv = [
            sys.executable, "-m", "auction_bench.archive_load", "--grpc", bidder_target,
            "--items", ",".join(items), "--rate", str(rate), "--contenders", str(contenders),
            "--out", str(out),
        ]  # fmt: skip
        self._out = out
        self._proc: asyncio.subprocess.Process | None = None
        self.accepted: list[Accepted] = []
        self.samples: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.rejected = 0

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=scaled(30))
        assert line.decode().strip() == READY_LINE, line

    async def stop(self) -> None:
        """Stop the load and read its record (safe to call twice, or after a failed start)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), timeout=scaled(30))
        assert proc.returncode == 0, proc.returncode
        record = json.loads(self._out.read_text())
        self.accepted = [Accepted(*row) for row in record["accepted"]]
        self.samples = [(sent, ms) for sent, ms, _ in record["samples"]]
        self.errors = record["errors"]
        self.rejected = record["rejected"]

    def latencies(self, since: float, until: float) -> list[float]:
        """Sorted latencies (ms) of bids sent between two `time.time()` marks."""
        return sorted(ms for sent, ms in self.samples if since <= sent < until)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


@pytest.fixture
async def fresh_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a new, empty database on the session's PostgreSQL, dropped afterwards."""
    name = f"archive_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def archive_stack() -> AsyncIterator[ArchiveStack]:
    """Own Redis, NATS and PostgreSQL, a bidder process; relays and archivers are started by the tests."""
    sink = service_sink()
    with temp_data_dir("auction-archive-") as tmp:
        redis = RedisServer(tmp / "redis", sink=server_sink(), start_timeout=scaled(30))
        nats_server = NatsServer(tmp / "nats", sink=server_sink(), start_timeout=scaled(30))
        postgres = PostgresServer(tmp / "postgres", sink=server_sink(), start_timeout=scaled(30))
        bidder_port = free_port()
        stack: ArchiveStack | None = None
        channel: grpc.aio.Channel | None = None
        async with contextlib.AsyncExitStack() as servers:
            await servers.enter_async_context(redis)
            await servers.enter_async_context(nats_server)
            servers.callback(postgres.remove_cluster)
            await servers.enter_async_context(postgres)
            bidder = bidder_process(
                redis.url, bidder_port, partitions=PARTITIONS, admin_token=ADMIN_TOKEN, sink=sink,
                log_path=tmp / "bidder.log",
                extra_env={"BIDDER_LOG_LEVEL": "warning"},
            )  # fmt: skip
            bidder.start_timeout = scaled(30)
            await servers.enter_async_context(bidder)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{bidder_port}")
            stack = ArchiveStack(
                tmp, redis, nats_server, postgres, f"127.0.0.1:{bidder_port}",
                bidder_pb2_grpc.BidderServiceStub(channel), sink,
            )  # fmt: skip
            try:
                yield stack
            finally:
                for load in stack.loads:
                    with contextlib.suppress(Exception):
                        await load.stop()
                for process in reversed(stack.processes):
                    await process.stop()
                await channel.close(grace=None)
