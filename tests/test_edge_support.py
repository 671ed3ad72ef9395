"""Helpers shared by the edge gateway tests (this module holds no tests).

The app always runs with its real lifespan and real gRPC channels. "No bidder" means a free port that
nobody listens on; where a test needs answers, `fake_upstream` starts a real `grpc.aio` server on a
free port implementing `auction.v1.BidderService`, `auction.v1.HistoryService` and the standard health
service, whose answers (including rich error details) the test scripts.
"""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import jwt
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc, history_pb2, history_pb2_grpc, item_pb2
from edge_gateway.app import create_app
from edge_gateway.settings import EdgeSettings
from tests.conftest import TIME_UNIT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI
    from google.protobuf.message import Message

SECRET = "t3st-Kq8Zr2Lw9Xv4Mn7Bc1Hd6Jf0Gs5Py"  # 34 bytes, many distinct characters
EPOCH_2026 = 1_795_000_000  # 2026-11-18T11:06:40Z


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_settings(**overrides: Any) -> EdgeSettings:
    """Settings independent of the environment's `EDGE_*` variables; bidder unreachable by default."""
    values: dict[str, Any] = {
        "AUCTION_JWT_SECRET": SECRET,
        "bidder_target": f"127.0.0.1:{free_port()}",
        "grpc_timeout_seconds": 2.0 * TIME_UNIT,
        **overrides,
    }
    # model_validate, not the constructor: no environment variable can leak into a test.
    return EdgeSettings.model_validate(values)


def make_token(
    sub: str = "alice",
    role: str = "bidder",
    *,
    expires_in: float = 3600,
    secret: str = SECRET,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {"sub": sub, "role": role, "exp": int(time.time() + expires_in), **claims}
    for name in drop:
        payload.pop(name)
    key: Any = secret if algorithm != "none" else None
    return jwt.encode(payload, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running_app(settings: EdgeSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client speaking ASGI to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            yield app, client


def sample_item(item_id: str = "lot-1", *, bids: int = 0) -> item_pb2.Item:
    item = item_pb2.Item(
        id=item_id,
        title="Ming vase",
        description="Blue and white.",
        currency="EUR",
        status=item_pb2.ITEM_STATUS_OPEN,
        starting_price=1000,
        min_increment=50,
        bid_count=bids,
        min_next_bid=1000 + 50 * bids if bids else 1000,
        seq=1 + bids,
    )
    item.starts_at.FromSeconds(EPOCH_2026)
    item.ends_at.seconds = EPOCH_2026 + 3600
    item.ends_at.nanos = 250_000_000
    if bids:
        item.current_price = 1000 + 50 * (bids - 1)
        item.highest_bidder = "alice"
    return item


@dataclass
class Rejection:
    """A scripted gRPC failure, optionally with an `auction.v1` ErrorInfo in the rich status."""

    code: grpc.StatusCode
    message: str = "rejected"
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def rich_status(self) -> status_pb2.Status:
        rich = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.reason is not None:
            info = error_details_pb2.ErrorInfo(
                reason=self.reason, domain="auction.v1", metadata=self.metadata
            )
            rich.details.add().Pack(info)
        return rich

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        if self.reason is None:
            return ()
        return (("grpc-status-details-bin", self.rich_status().SerializeToString()),)


class FakeBidder(bidder_pb2_grpc.BidderServiceServicer):
    """Answers from `items`; `reject` (when set) fails every call; `delay` slows every call."""

    def __init__(self) -> None:
        self.items: dict[str, item_pb2.Item] = {"lot-1": sample_item()}
        self.calls: list[Message] = []
        self.reject: Rejection | None = None
        self.delay = 0.0
        self.next_cursor = ""

    async def _gate(self, request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject is not None:
            await context.abort(
                self.reject.code, self.reject.message, trailing_metadata=self.reject.trailing_metadata()
            )

    async def _item(self, item_id: str, context: grpc.aio.ServicerContext[Any, Any]) -> item_pb2.Item:
        item = self.items.get(item_id)
        if item is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"item {item_id!r} not found")
        assert item is not None
        return item

    async def CreateItem(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.CreateItemRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.CreateItemResponse:
        await self._gate(request, context)
        item = sample_item("lot-new")
        item.title = request.title
        item.starting_price = request.starting_price
        item.min_next_bid = request.starting_price
        item.ends_at.CopyFrom(request.ends_at)
        self.items[item.id] = item
        return bidder_pb2.CreateItemResponse(item=item)

    async def GetItem(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.GetItemRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.GetItemResponse:
        await self._gate(request, context)
        return bidder_pb2.GetItemResponse(item=await self._item(request.item_id, context))

    async def ListItems(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.ListItemsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.ListItemsResponse:
        await self._gate(request, context)
        return bidder_pb2.ListItemsResponse(items=list(self.items.values()), next_cursor=self.next_cursor)

    async def PlaceBid(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.PlaceBidRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.PlaceBidResponse:
        await self._gate(request, context)
        before = await self._item(request.item_id, context)
        after = sample_item(before.id, bids=before.bid_count + 1)
        after.current_price = request.amount
        after.highest_bidder = request.bidder
        after.min_next_bid = request.amount + after.min_increment
        response = bidder_pb2.PlaceBidResponse(
            bid_id=f"bid-{after.seq}", seq=after.seq, amount=request.amount, item=after
        )
        response.placed_at.FromSeconds(EPOCH_2026 + 60)
        return response

    async def BuyNow(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.BuyNowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.PlaceBidResponse:
        """Sold to the caller at 5000 and closed (the fake keeps no state: every buy wins)."""
        await self._gate(request, context)
        before = await self._item(request.item_id, context)
        after = sample_item(before.id, bids=1)
        after.status = item_pb2.ITEM_STATUS_CLOSED
        after.current_price = after.buy_now_price = 5000
        after.highest_bidder = request.bidder
        after.seq = 3
        response = bidder_pb2.PlaceBidResponse(bid_id="bid-2", seq=2, amount=5000, item=after, leading=True)
        response.placed_at.FromSeconds(EPOCH_2026 + 60)
        return response

    async def PlaceBids(  # noqa: N802 (gRPC method name)
        self, request: bidder_pb2.PlaceBidsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bidder_pb2.PlaceBidsResponse:
        """Like the real bidder: per-bid rejections in the outcomes, whole-call failures abort."""
        outcomes = []
        for bid in request.bids:
            self.calls.append(bid)
            if self.delay:
                await asyncio.sleep(self.delay)
            reject = self.reject
            if reject is not None and reject.code not in PER_BID_CODES:
                await context.abort(reject.code, reject.message, trailing_metadata=reject.trailing_metadata())
            if reject is not None:
                outcomes.append(bidder_pb2.BidOutcome(rejected=reject.rich_status()))
            elif bid.item_id not in self.items:
                missing = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="no such item")
                outcomes.append(bidder_pb2.BidOutcome(rejected=missing))
            else:
                outcomes.append(bidder_pb2.BidOutcome(accepted=self._accept(bid)))
        return bidder_pb2.PlaceBidsResponse(outcomes=outcomes)

    def _accept(self, request: bidder_pb2.PlaceBidRequest) -> bidder_pb2.PlaceBidResponse:
        """Leads at its amount (a maximum alone: at the item's minimum)."""
        before = self.items[request.item_id]
        amount = request.amount or before.min_next_bid
        after = sample_item(before.id, bids=before.bid_count + 1)
        after.current_price = amount
        after.highest_bidder = request.bidder
        after.min_next_bid = amount + after.min_increment
        response = bidder_pb2.PlaceBidResponse(
            bid_id=f"bid-{after.seq}", seq=after.seq, amount=amount, item=after, leading=True
        )
        response.placed_at.FromSeconds(EPOCH_2026 + 60)
        return response


PER_BID_CODES = frozenset(
    {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
)


class FakeHistory(history_pb2_grpc.HistoryServiceServicer):
    """Two bids for `lot-1`, NOT_FOUND for anything else."""

    def __init__(self) -> None:
        self.calls: list[history_pb2.ListBidsRequest] = []

    async def ListBids(  # noqa: N802 (gRPC method name)
        self, request: history_pb2.ListBidsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> history_pb2.ListBidsResponse:
        self.calls.append(request)
        if request.item_id != "lot-1":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such item")
        bids = [
            history_pb2.Bid(bid_id=f"bid-{seq}", item_id="lot-1", seq=seq, bidder="bob", amount=1000 + seq)
            for seq in (3, 2)
        ]
        for bid in bids:
            bid.placed_at.FromMilliseconds(EPOCH_2026 * 1000 + bid.seq * 1001)
        return history_pb2.ListBidsResponse(bids=bids, next_before_seq=2)


class FakeHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """The standard health service (`grpc.health.v1.Health/Check`) with a status the test sets."""

    def __init__(self, serving: bool) -> None:
        self.serving = serving

    async def Check(  # noqa: N802 (gRPC method name)
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        return health_pb2.HealthCheckResponse(status=status)


@dataclass
class Upstream:
    target: str
    bidder: FakeBidder
    history: FakeHistory
    health: FakeHealth


@asynccontextmanager
async def fake_upstream(*, serving: bool = True) -> AsyncIterator[Upstream]:
    """A real gRPC server with the fake services, on a free port, stopped on exit."""
    server = grpc.aio.server()
    bidder, history, checker = FakeBidder(), FakeHistory(), FakeHealth(serving)
    bidder_pb2_grpc.add_BidderServiceServicer_to_server(bidder, server)
    history_pb2_grpc.add_HistoryServiceServicer_to_server(history, server)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Upstream(f"127.0.0.1:{port}", bidder, history, checker)
    finally:
        await server.stop(None)
