"""Thin adapters over the gRPC stubs: a deadline on every call, failures as HTTP problems.

Each client owns nothing but a stub on a channel that the app's lifespan opened (and will close); the
translation of a failed call is `grpc_errors.problem_from_rpc_error`, applied here so routes never see
a gRPC exception. Requests are built with keyword arguments straight from validated values, which is
the cheapest way to fill a protobuf message from Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc, history_pb2, history_pb2_grpc
from edge_gateway.bid_batcher import BidBatcher
from edge_gateway.grpc_errors import problem_from_rich_status, problem_from_rpc_error

if TYPE_CHECKING:
    from auction.v1 import item_pb2
    from edge_gateway.metrics import EdgeMetrics
    from edge_gateway.problems import ProblemError

_log = structlog.get_logger(__name__)
_SERVING = health_pb2.HealthCheckResponse.SERVING
# Statuses that point at a bug behind the gateway: logged (with the upstream's message) once per call.
_UPSTREAM_BUGS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


class _Client:
    __slots__ = ("_metrics", "_timeout")

    def __init__(self, timeout: float, metrics: EdgeMetrics) -> None:
        self._timeout = timeout
        self._metrics = metrics

    def _failed(self, method: str, err: grpc.aio.AioRpcError) -> ProblemError:
        code = err.code()
        self._metrics.grpc_error(method, code.name)
        if code in _UPSTREAM_BUGS:
            _log.error("grpc call failed", method=method, code=code.name, details=err.details())
        return problem_from_rpc_error(err)


class BidderClient(_Client):
    """`auction.v1.BidderService` plus the standard health check of the same server."""

    __slots__ = ("_batcher", "_health", "_stub")

    def __init__(
        self,
        channel: grpc.aio.Channel,
        timeout: float,
        metrics: EdgeMetrics,
        *,
        batch_max: int = 256,
        batch_in_flight: int = 2,
    ) -> None:
        super().__init__(timeout, metrics)
        self._stub = bidder_pb2_grpc.BidderServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._batcher = BidBatcher(self._stub, timeout, batch_max, batch_in_flight)

    async def place_bid(
        self, item_id: str, bidder: str, amount: int, idempotency_key: str, max_amount: int | None = None
    ) -> bidder_pb2.PlaceBidResponse:
        """Group-committed with concurrent bids (`BidBatcher`); the outcome is this bid's alone.
        `amount` 0 with a `max_amount`: a maximum alone."""
        request = bidder_pb2.PlaceBidRequest(
            item_id=item_id, bidder=bidder, amount=amount, idempotency_key=idempotency_key
        )
        if max_amount is not None:
            request.max_amount = max_amount
        try:
            outcome = await self._batcher.submit(request)
        except grpc.aio.AioRpcError as err:
            raise self._failed("PlaceBids", err) from None
        if outcome.HasField("accepted"):
            return outcome.accepted
        raise problem_from_rich_status(outcome.rejected)

    async def buy_now(self, item_id: str, buyer: str, idempotency_key: str) -> bidder_pb2.PlaceBidResponse:
        """One unary call: a buy is rare (at most one succeeds per item), so it skips the batcher."""
        request = bidder_pb2.BuyNowRequest(item_id=item_id, bidder=buyer, idempotency_key=idempotency_key)
        try:
            return await self._stub.BuyNow(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise self._failed("BuyNow", err) from None

    async def drain(self) -> None:
        await self._batcher.drain()

    async def create_item(self, request: bidder_pb2.CreateItemRequest) -> item_pb2.Item:
        try:
            response = await self._stub.CreateItem(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise self._failed("CreateItem", err) from None
        return response.item

    async def get_item(self, item_id: str) -> item_pb2.Item:
        try:
            response = await self._stub.GetItem(
                bidder_pb2.GetItemRequest(item_id=item_id), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise self._failed("GetItem", err) from None
        return response.item

    async def list_items(
        self, status: item_pb2.ItemStatus.ValueType, limit: int, cursor: str
    ) -> bidder_pb2.ListItemsResponse:
        request = bidder_pb2.ListItemsRequest(status=status, limit=limit, cursor=cursor)
        try:
            return await self._stub.ListItems(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise self._failed("ListItems", err) from None

    async def serving(self, within_seconds: float) -> bool:
        """Whether the bidder's `grpc.health.v1.Health/Check` for service "" says SERVING in time."""
        request = health_pb2.HealthCheckRequest(service="")
        try:
            response = await self._health.Check(request, timeout=within_seconds)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == _SERVING)


class HistoryClient(_Client):
    """`auction.v1.HistoryService` (the archiver)."""

    __slots__ = ("_stub",)

    def __init__(self, channel: grpc.aio.Channel, timeout: float, metrics: EdgeMetrics) -> None:
        super().__init__(timeout, metrics)
        self._stub = history_pb2_grpc.HistoryServiceStub(channel)

    async def list_bids(self, item_id: str, limit: int, before_seq: int) -> history_pb2.ListBidsResponse:
        request = history_pb2.ListBidsRequest(item_id=item_id, limit=limit, before_seq=before_seq)
        try:
            return await self._stub.ListBids(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise self._failed("ListBids", err) from None
