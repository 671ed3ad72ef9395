"""Bidder errors to gRPC statuses, in one place. Rejections carry a google.rpc.ErrorInfo detail."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

from core_bidder.errors import (
    BidderError,
    BidRejected,
    IdempotencyKeyReused,
    InvalidArgument,
    ItemNotFound,
    StoreUnavailable,
)

DOMAIN = "auction.v1"
DETAILS_KEY = "grpc-status-details-bin"

Trailer = tuple[tuple[str, bytes], ...]


def _details(code: int, message: str, reason: str, metadata: dict[str, str] | None = None) -> Trailer:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})
    status = status_pb2.Status(code=code, message=message)
    status.details.add().Pack(info)
    return ((DETAILS_KEY, status.SerializeToString()),)


def to_status(error: BidderError) -> tuple[grpc.StatusCode, str, Trailer]:
    message = str(error)
    if isinstance(error, BidRejected):
        metadata = {} if error.min_next_bid is None else {"min_next_bid": str(error.min_next_bid)}
        trailer = _details(code_pb2.FAILED_PRECONDITION, message, error.reason.value, metadata)
        return grpc.StatusCode.FAILED_PRECONDITION, message, trailer
    if isinstance(error, IdempotencyKeyReused):
        trailer = _details(code_pb2.INVALID_ARGUMENT, message, "IDEMPOTENCY_KEY_REUSED")
        return grpc.StatusCode.INVALID_ARGUMENT, message, trailer
    if isinstance(error, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, message, ()
    if isinstance(error, ItemNotFound):
        return grpc.StatusCode.NOT_FOUND, message, ()
    if isinstance(error, StoreUnavailable):
        return grpc.StatusCode.UNAVAILABLE, message, ()
    return grpc.StatusCode.INTERNAL, "internal error", ()
