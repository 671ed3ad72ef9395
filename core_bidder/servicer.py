"""The gRPC face of the bidder: thin, it validates, calls the store and maps errors via `status`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from prometheus_client import Counter

from auction.v1 import bidder_pb2, bidder_pb2_grpc, item_pb2
from auction_contract.proto_status import STATUS_FROM_PROTO
from auction_contract.wire_time import ms_of, timestamp
from core_bidder.convert import item_message
from core_bidder.errors import BidderError, BidRejected, InvalidArgument, ItemNotFound, RejectReason
from core_bidder.rules import AcceptedBid
from core_bidder.status import abort, rich_status
from core_bidder.store import BidRequest, now_ms
from core_bidder.validation import (
    bid_kinds,
    check_bid,
    check_bidder,
    check_idempotency_key,
    check_item_id,
    check_new_item,
    check_reserve,
    check_times,
    soft_close_rule,
)

if TYPE_CHECKING:
    import grpc.aio

    from core_bidder.store import ItemStore

BIDS = Counter("bidder_bids_total", "Bids handled, by outcome", ["outcome"])
_ACCEPTED = BIDS.labels("accepted")
_REJECTED = BIDS.labels("rejected")
log = structlog.get_logger(__name__)
MAX_BATCH = 4096


class BidderServicer(bidder_pb2_grpc.BidderServiceServicer):
    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def PlaceBid(
        self, request: bidder_pb2.PlaceBidRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.PlaceBidResponse:
        try:
            if not check_item_id(request.item_id):
                raise ItemNotFound(request.item_id)
            max_amount = _max_of(request)
            check_bid(request.bidder, request.amount, request.idempotency_key, max_amount)
            bid = await self._store.place_bid(
                request.item_id, request.bidder, request.amount, request.idempotency_key, max_amount
            )
        except BidRejected as exc:
            _REJECTED.inc()
            await abort(context, exc)
        except Exception as exc:
            await abort(context, exc)
        _ACCEPTED.inc()
        return _accepted_message(bid)

    async def BuyNow(
        self, request: bidder_pb2.BuyNowRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.PlaceBidResponse:
        try:
            if not check_item_id(request.item_id):
                raise ItemNotFound(request.item_id)
            check_bidder(request.bidder)
            check_idempotency_key(request.idempotency_key)
            bought = await self._store.buy_now(request.item_id, request.bidder, request.idempotency_key)
        except BidRejected as exc:
            _REJECTED.inc()
            await abort(context, exc)
        except Exception as exc:
            await abort(context, exc)
        _ACCEPTED.inc()
        log.info("bought_now", item_id=request.item_id, seq=bought.seq)
        return _accepted_message(bought)

    async def PlaceBids(
        self, request: bidder_pb2.PlaceBidsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.PlaceBidsResponse:
        """Group commit from one caller (the edge): one call, one outcome per bid, in order."""
        outcomes: list[bidder_pb2.BidOutcome | None] = [None] * len(request.bids)
        valid: list[int] = []
        try:
            if len(request.bids) > MAX_BATCH:
                raise InvalidArgument(f"at most {MAX_BATCH} bids per call")
            for index, bid in enumerate(request.bids):
                try:
                    if not check_item_id(bid.item_id):
                        raise ItemNotFound(bid.item_id)
                    check_bid(bid.bidder, bid.amount, bid.idempotency_key, _max_of(bid))
                except BidderError as exc:
                    outcomes[index] = bidder_pb2.BidOutcome(rejected=rich_status(exc))
                else:
                    valid.append(index)
            results = await self._store.place_bids(
                [
                    BidRequest(b.item_id, b.bidder, b.amount, b.idempotency_key, _max_of(b))
                    for b in (request.bids[i] for i in valid)
                ]
            )
        except Exception as exc:
            await abort(context, exc)
        accepted = 0
        # In a war most bids of a call are refused alike ("too low, the minimum is N"): one status each.
        refusals: dict[tuple[RejectReason, int | None], bidder_pb2.BidOutcome] = {}
        for index, result in zip(valid, results, strict=True):
            if isinstance(result, BidRejected):
                key = (result.reason, result.min_next_bid)
                outcome = refusals.get(key)
                if outcome is None:
                    outcome = refusals[key] = bidder_pb2.BidOutcome(rejected=rich_status(result))
                outcomes[index] = outcome
            elif isinstance(result, BidderError):
                outcomes[index] = bidder_pb2.BidOutcome(rejected=rich_status(result))
            else:
                accepted += 1
                outcomes[index] = bidder_pb2.BidOutcome(accepted=_accepted_message(result))
        _ACCEPTED.inc(accepted)
        _REJECTED.inc(len(request.bids) - accepted)
        return bidder_pb2.PlaceBidsResponse(outcomes=[o for o in outcomes if o is not None])

    async def CreateItem(
        self, request: bidder_pb2.CreateItemRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> bidder_pb2.CreateItemResponse:
        try:
            check_new_item(
                request.title, request.description, request.currency,
                request.starting_price, request.min_increment or (1 if request.increments else 0),
            )  # fmt: skip
            if not request.HasField("ends_at"):
                raise InvalidArgument("ends_at is required")
            starts = ms_of(request.starts_at) if request.HasField("starts_at") else None
            ends = ms_of(request.ends_at)
            check_times(starts, ends)
            reserve = request.reserve_price if request.HasField("reserve_price") else None
            check_reserve(reserve, request.starting_price)
            buy_now = request.buy_now_price if request.HasField("buy_now_price") else None
            steps = tuple((step.from_price, step.increment) for step in request.increments)
            ladder, min_increment = bid_kinds(
                steps, request.min_increment, request.starting_price, reserve, buy_now
            )
            rule = None
            if request.HasField("soft_close"):
                given = request.soft_close
                cap = ms_of(given.max_ends_at) if given.HasField("max_ends_at") else None
                rule = soft_close_rule(given.window_seconds, given.extension_seconds, cap, ends)
            view = await self._store.create_item(
                request.title, request.description, request.currency, request.starting_price,
                min_increment, starts, ends, soft_close=rule, reserve_price=reserve,
                increments=ladder, buy_now_price=buy_now,
            )  # fmt: skip
        except Exception as exc:
            await abort(context, exc)
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
            await abort(context, exc)
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
            await abort(context, exc)
        now = now_ms()
        return bidder_pb2.ListItemsResponse(items=[item_message(v, now) for v in views], next_cursor=cursor)


def _max_of(request: bidder_pb2.PlaceBidRequest) -> int | None:
    return request.max_amount if request.HasField("max_amount") else None


def _accepted_message(bid: AcceptedBid) -> bidder_pb2.PlaceBidResponse:
    # The item as of the bid's own moment, so an idempotent replay renders the same bytes.
    return bidder_pb2.PlaceBidResponse(
        bid_id=bid.bid_id,
        seq=bid.seq,
        amount=bid.amount,
        item=item_message(bid.item, bid.placed_ms),
        placed_at=timestamp(bid.placed_ms),
        leading=bid.leading,
    )
