"""The notice path as it runs in production: bidder (with its closer), relay and fan-out processes.

The session's Redis and NATS; the fan-out gets the stack's JWT secret (so `/ws/me` is on) and a short
auth timeout. `NoticeStack` creates items and bids through the bidder's gRPC API, mints tokens, and opens
`NoticeViewer`s: plain websockets clients of `/ws/me` that record every message, so the tests check the
server's own guarantees (no SDK de-duplication can hide a repeat or a stray notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from auction.v1 import bidder_pb2, bidder_pb2_grpc, item_pb2
from auction_contract.redis_layout import notice_channel
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import NatsServer, RedisServer
from devstack.services import bidder_process
from devstack.services_archive import relay_process
from devstack.services_fanout import fanout_process
from devstack.tokens import mint_token
from tests.conftest import scaled, service_sink
from tests.fanout_fixtures import FANOUT_TEST_ENV, eventually

AUTH_TIMEOUT_SECONDS = 1.0


@dataclass
class NoticeViewer:
    ws: ClientConnection
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, **options: Any) -> NoticeViewer:
        ws = await connect(url, proxy=None, compression=None, open_timeout=scaled(10), **options)
        viewer = cls(ws)
        viewer._task = asyncio.get_running_loop().create_task(viewer._read())
        return viewer

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.messages.append(orjson.loads(frame))
                self._changed.set()
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                self.close_code, self.close_reason = exc.rcvd.code, exc.rcvd.reason
            else:
                self.close_code = 1006
        else:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason or ""
        self._changed.set()

    @property
    def notices(self) -> list[dict[str, Any]]:
        """The notices received, `server_time` left out (control frames such as `ready` too)."""
        return [
            {k: v for k, v in m.items() if k != "server_time"}
            for m in self.messages
            if m.get("type") not in ("ready", "error")
        ]

    async def wait_for(self, predicate: Callable[[NoticeViewer], bool], within: float = 20.0) -> None:
        async with asyncio.timeout(scaled(within)):
            while not predicate(self):
                if self._task is not None and self._task.done():
                    assert predicate(self), f"closed with {self.close_code} before: {self.messages[-3:]}"
                self._changed.clear()
                await self._changed.wait()

    async def wait_ready(self) -> None:
        await self.wait_for(lambda v: any(m.get("type") == "ready" for m in v.messages))

    async def wait_notices(self, count: int, within: float = 20.0) -> list[dict[str, Any]]:
        await self.wait_for(lambda v: len(v.notices) >= count, within)
        return self.notices

    async def wait_closed(self, within: float = 20.0) -> int | None:
        await self.wait_for(lambda v: v.close_code is not None, within)
        return self.close_code

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class NoticeStack:
    stub: bidder_pb2_grpc.BidderServiceAsyncStub
    fanout_port: int
    secret: str
    redis: Redis
    viewers: list[NoticeViewer] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.fanout_port}"

    @property
    def me_url(self) -> str:
        return f"{self.base_url}/ws/me"

    def token(self, sub: str, role: str = "bidder", ttl_seconds: int = 3600) -> str:
        """An HS256 token of the stack's secret; a negative `ttl_seconds` gives one that has expired."""
        if ttl_seconds > 0:
            return mint_token(self.secret, sub, role, ttl_seconds=ttl_seconds)
        now = int(time.time())
        claims = {"sub": sub, "role": role, "iat": now - 60, "exp": now + ttl_seconds}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    async def viewer(
        self, sub: str | None = None, *, token: str | None = None, ready: bool = True
    ) -> NoticeViewer:
        """A `/ws/me` connection with the token in the subprotocol header (`bearer, <jwt>`)."""
        bearer = token if token is not None else self.token(sub or "nobody")
        viewer = await NoticeViewer.open(
            self.me_url, subprotocols=[Subprotocol("bearer"), Subprotocol(bearer)]
        )
        self.viewers.append(viewer)
        if ready:
            await viewer.wait_ready()
        return viewer

    async def raw_viewer(self, **options: Any) -> NoticeViewer:
        viewer = await NoticeViewer.open(self.me_url, **options)
        self.viewers.append(viewer)
        return viewer

    async def create_item(
        self, *, ends_in: float = 3600, soft_close: tuple[int, int] | None = None, starting_price: int = 100
    ) -> str:
        ends_ms = int((time.time() + ends_in) * 1000)
        request = bidder_pb2.CreateItemRequest(
            title="Lamp", description="A lamp", currency="USD", starting_price=starting_price,
            min_increment=10, ends_at=Timestamp(seconds=ends_ms // 1000, nanos=(ends_ms % 1000) * 1_000_000),
        )  # fmt: skip
        if soft_close is not None:
            request.soft_close.CopyFrom(
                item_pb2.SoftClose(window_seconds=soft_close[0], extension_seconds=soft_close[1])
            )
        reply = await self.stub.CreateItem(request)
        return str(reply.item.id)

    async def bid(self, item_id: str, bidder: str, amount: int) -> int:
        """Place one bid; return its seq (it must be accepted)."""
        reply = await self.stub.PlaceBids(
            bidder_pb2.PlaceBidsRequest(
                bids=[bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)]
            )
        )
        [outcome] = reply.outcomes
        assert outcome.HasField("accepted"), outcome
        return int(outcome.accepted.seq)

    async def subscribers(self, bidder: str) -> int:
        """How many Redis subscriptions the bidder's notice channel has (the fan-out's, while connected)."""
        reply = await self.redis.pubsub_numsub(notice_channel(bidder))
        return int(reply[0][1])

    async def wait_subscribers(self, bidder: str, count: int, within: float = 20.0) -> None:
        await eventually(lambda: self._has_subscribers(bidder, count), within)

    async def _has_subscribers(self, bidder: str, count: int) -> bool:
        return await self.subscribers(bidder) == count


async def _started(process: ServiceProcess, started: list[ServiceProcess]) -> None:
    process.start_timeout = scaled(30)
    process.stop_grace = scaled(5)
    await process.start()
    started.append(process)


@pytest.fixture(scope="module")
async def notice_stack(redis_server: RedisServer, nats_server: NatsServer) -> AsyncIterator[NoticeStack]:
    """Bidder (closer every 0.1 s), relay and one fan-out with `/ws/me` on, for the module."""
    logs = Path(tempfile.mkdtemp(prefix="auction-notices-"))
    sink = service_sink()
    secret = secrets.token_urlsafe(32)
    bidder_port, relay_port, fanout_port = free_port(), free_port(), free_port()
    started: list[ServiceProcess] = []
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{bidder_port}")
    redis = Redis.from_url(redis_server.url)
    try:
        await _started(
            bidder_process(
                redis_server.url, bidder_port, sink=sink, log_path=logs / "bidder.log",
                extra_env={"BIDDER_CLOSE_INTERVAL_SECONDS": "0.1", "BIDDER_LOG_LEVEL": "warning"},
            ),
            started,
        )  # fmt: skip
        await _started(
            relay_process(
                redis_server.url, nats_server.url, relay_port, consumer=f"notices-{secrets.token_hex(4)}",
                sink=sink, log_path=logs / "relay.log",
                extra_env={"RELAY_LOG_LEVEL": "warning", "RELAY_IDLE_BLOCK_SECONDS": "0.2"},
            ),
            started,
        )  # fmt: skip
        env = {
            **FANOUT_TEST_ENV,
            "AUCTION_JWT_SECRET": secret,
            "FANOUT_AUTH_TIMEOUT_SECONDS": str(AUTH_TIMEOUT_SECONDS),
        }
        await _started(
            fanout_process(
                redis_server.url, f"127.0.0.1:{bidder_port}", fanout_port, sink=sink,
                log_path=logs / "fanout.log", extra_env=env,
            ),
            started,
        )  # fmt: skip
        stack = NoticeStack(bidder_pb2_grpc.BidderServiceStub(channel), fanout_port, secret, redis)
        try:
            yield stack
        finally:
            for viewer in stack.viewers:
                with contextlib.suppress(Exception):
                    await viewer.close()
    finally:
        for process in reversed(started):
            await process.stop()
        await channel.close(grace=None)
        await redis.aclose()
