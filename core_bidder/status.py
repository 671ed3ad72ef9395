"""Bidder errors to gRPC statuses, in one place. Rejections carry a google.rpc.ErrorInfo detail.

`rich_status` is the whole status as a google.rpc.Status message: PlaceBid sends it in the
`grpc-status-details-bin` trailer, PlaceBids puts it in the bid's outcome, so both say the same.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
import grpc.aio
import redis.exceptions
import structlog
from google.rpc import error_details_pb2, status_pb2

from core_bidder.errors import (
    BidderError,
    BidRejected,
    IdempotencyKeyReused,
    InvalidArgument,
    ItemNotFound,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
)

log = structlog.get_logger(__name__)
DOMAIN = "auction.v1"
DETAILS_KEY = "grpc-status-details-bin"

Trailer = tuple[tuple[str, bytes], ...]


def status_code(error: BidderError) -> grpc.StatusCode:
    if isinstance(error, BidRejected):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(error, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, ItemNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, StoreUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(error, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED
    return grpc.StatusCode.INTERNAL


def _message(error: BidderError) -> str:
    return str(error) if type(error) is not BidderError else "internal error"


def rich_status(error: BidderError) -> status_pb2.Status:
    code = status_code(error)
    status = status_pb2.Status(code=code.value[0], message=_message(error))
    reason = ""
    metadata: dict[str, str] = {}
    if isinstance(error, BidRejected):
        reason = error.reason.value
        if error.min_next_bid is not None:
            metadata["min_next_bid"] = str(error.min_next_bid)
    elif isinstance(error, IdempotencyKeyReused):
        reason = "IDEMPOTENCY_KEY_REUSED"
    if reason:
        status.details.add().Pack(
            error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
        )
    return status


def to_status(error: BidderError) -> tuple[grpc.StatusCode, str, Trailer]:
    """(code, message, trailing metadata) for aborting a unary call with this error."""
    status = rich_status(error)
    trailer: Trailer = ((DETAILS_KEY, status.SerializeToString()),) if status.details else ()
    return status_code(error), status.message, trailer


async def abort(context: grpc.aio.ServicerContext[object, object], exc: Exception) -> NoReturn:
    """Abort the call with the status of `exc`; anything not a `BidderError` is logged and INTERNAL."""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        exc = StoreUnavailable("auction store unavailable")
    if not isinstance(exc, BidderError):
        log.exception("unexpected_error", exc_info=exc)
    code, message, trailer = to_status(exc if isinstance(exc, BidderError) else BidderError())
    await context.abort(code, message, trailing_metadata=trailer)
