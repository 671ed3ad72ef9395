"""The gRPC face of the bidder: thin, it validates, calls the store and maps errors via `status`."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import redis.exceptions
import structlog
from prometheus_client import Counter

from auction.v1 import bidder_pb2, bidder_pb2_grpc, item_pb2
from core_bidder.convert import STATUS_FROM_PROTO, item_message, ms_of, timestamp
from core_bidder.errors import BidderError, BidRejected, InvalidArgument, ItemNotFound, StoreUnavailable
from core_bidder.status import to_status
from core_bidder.store import now_ms
from core_bidder.validation import check_bid, check_item_id, check_new_item

if TYPE_CHECKING:
    import grpc.aio

    from core_bidder.store import ItemStore

BIDS = Counter("bidder_bids_total", "Bids handled, by outcome", ["outcome"])
_ACCEPTED = BIDS.labels("accepted")
_REJECTED = BIDS.labels("rejected")
log = structlog.get_logger(__name__)


class BidderServicer(bidder_pb2_grpc.BidderServiceServicer):
    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def PlaceBid(
        self, request: bidder_pb2.PlaceBidRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.PlaceBidResponse:
        try:
            if not check_item_id(request.item_id):
                raise ItemNotFound(request.item_id)
            check_bid(request.bidder, request.amount, request.idempotency_key)
            bid = await self._store.place_bid(
                request.item_id, request.bidder, request.amount, request.idempotency_key
            )
        except BidRejected as exc:
            _REJECTED.inc()
            await _abort(context, exc)
        except Exception as exc:
            await _abort(context, exc)
        _ACCEPTED.inc()
        return bidder_pb2.PlaceBidResponse(
            bid_id=bid.bid_id,
            seq=bid.seq,
            amount=bid.amount,
            item=item_message(bid.item, bid.placed_ms),
            placed_at=timestamp(bid.placed_ms),
        )

    async def CreateItem(
        self, request: bidder_pb2.CreateItemRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.CreateItemResponse:
        try:
            check_new_item(
                request.title, request.description, request.currency,
                request.starting_price, request.min_increment,
            )  # fmt: skip
            if not request.HasField("ends_at"):
                raise InvalidArgument("ends_at is required")
            starts = ms_of(request.starts_at) if request.HasField("starts_at") else None
            view = await self._store.create_item(
                request.title, request.description, request.currency, request.starting_price,
                request.min_increment, starts, ms_of(request.ends_at),
            )  # fmt: skip
        except Exception as exc:
            await _abort(context, exc)
        log.info("item_created", item_id=view.static.id)
        return bidder_pb2.CreateItemResponse(item=item_message(view, now_ms()))

    async def GetItem(
        self, request: bidder_pb2.GetItemRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.GetItemResponse:
        try:
            if not check_item_id(request.item_id):
                raise ItemNotFound(request.item_id)
            view = await self._store.get_item(request.item_id)
        except Exception as exc:
            await _abort(context, exc)
        return bidder_pb2.GetItemResponse(item=item_message(view, now_ms()))

    async def ListItems(
        self, request: bidder_pb2.ListItemsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.ListItemsResponse:
        try:
            if request.limit < 0 or request.limit > 200:
                raise InvalidArgument("limit must be between 1 and 200")
            status = None
            if request.status != item_pb2.ITEM_STATUS_UNSPECIFIED:
                if request.status not in STATUS_FROM_PROTO:
                    raise InvalidArgument("unknown status")
                status = STATUS_FROM_PROTO[request.status]
            views, cursor = await self._store.list_items(status, request.limit or 50, request.cursor)
        except Exception as exc:
            await _abort(context, exc)
        now = now_ms()
        return bidder_pb2.ListItemsResponse(items=[item_message(v, now) for v in views], next_cursor=cursor)


async def _abort(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> NoReturn:
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        exc = StoreUnavailable("auction store unavailable")
    if not isinstance(exc, BidderError):
        log.exception("unexpected_error", exc_info=exc)
    code, message, trailer = to_status(exc if isinstance(exc, BidderError) else BidderError())
    await context.abort(code, message, trailing_metadata=trailer)
