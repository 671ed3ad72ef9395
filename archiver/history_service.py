"""`auction.v1.HistoryService` over the archive: thin, it validates, reads, and maps errors in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from archiver import metrics
from archiver.errors import ArchiverError, ArchiveUnavailable, InvalidArgument, ItemNotFound
from auction.v1 import history_pb2, history_pb2_grpc
from auction_contract.rules import ITEM_ID_PATTERN

if TYPE_CHECKING:
    from archiver.history import BidPage, HistoryReader

log = structlog.get_logger(__name__)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_CODES: dict[type[ArchiverError], grpc.StatusCode] = {
    ItemNotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    ArchiveUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The one translation from archiver errors to gRPC statuses; anything unexpected is INTERNAL."""
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code, str(exc) if code is not grpc.StatusCode.UNAVAILABLE else "the archive is unavailable"
    return grpc.StatusCode.INTERNAL, "internal error"


def check_request(request: history_pb2.ListBidsRequest) -> int:
    """The page size to use; `InvalidArgument` or `ItemNotFound` for requests that cannot succeed."""
    if ITEM_ID_PATTERN.fullmatch(request.item_id) is None:
        raise ItemNotFound(request.item_id)  # an id that cannot exist is simply not there
    if request.limit < 0 or request.limit > MAX_LIMIT:
        raise InvalidArgument(f"limit must be 1..{MAX_LIMIT} (0 for the default {DEFAULT_LIMIT})")
    if request.before_seq < 0:
        raise InvalidArgument("before_seq must be positive (0 for the newest)")
    return request.limit or DEFAULT_LIMIT


def page_message(item_id: str, page: BidPage) -> history_pb2.ListBidsResponse:
    response = history_pb2.ListBidsResponse(next_before_seq=page.next_before_seq)
    for bid in page.bids:
        placed = Timestamp()
        placed.FromDatetime(bid.placed_at)
        response.bids.append(
            history_pb2.Bid(
                bid_id=bid.bid_id,
                item_id=item_id,
                seq=bid.seq,
                bidder=bid.bidder,
                amount=bid.amount,
                currency=bid.currency,
                placed_at=placed,
            )
        )
    return response


class HistoryServicer(history_pb2_grpc.HistoryServiceServicer):
    def __init__(self, reader: HistoryReader) -> None:
        self._reader = reader

    async def ListBids(
        self, request: history_pb2.ListBidsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> history_pb2.ListBidsResponse:
        try:
            limit = check_request(request)
            page = await self._reader.list_bids(request.item_id, limit, request.before_seq)
        except Exception as exc:
            await _abort(context, exc)
        metrics.HISTORY_REQUESTS.labels("OK").inc()
        return page_message(request.item_id, page)


async def _abort(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> NoReturn:
    code, message = status_of(exc)
    metrics.HISTORY_REQUESTS.labels(code.name).inc()
    if code is grpc.StatusCode.INTERNAL:
        log.exception("list_bids_failed")
    elif code is grpc.StatusCode.UNAVAILABLE:
        log.warning("list_bids_unavailable", error=str(exc))
    await context.abort(code, message)
