"""The one place where gRPC statuses from the bidder and the archiver become HTTP problems.

Rejections carry their reason in a `google.rpc.ErrorInfo` (domain `auction.v1`) inside the rich status
that gRPC sends in the `grpc-status-details-bin` trailer. We parse that trailer ourselves rather than
with `grpc_status.rpc_status.from_call`: that helper raises when the status message and the rich
status' message differ, and a cosmetic mismatch must not turn a `bid-too-low` into a 502. The rich
status is still ignored when its *code* disagrees with the call's, as `from_call` does.

A too-low bid is an ordinary outcome in a bidding war, so this path stays cheap: one protobuf parse
and dictionary lookups. Messages of unexpected statuses are logged by the caller, never returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from edge_gateway.problems import MAX_MESSAGE_CHARS, ProblemError, unauthorized, unavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

DETAILS_KEY = "grpc-status-details-bin"
DOMAIN = "auction.v1"

_RETRY_AFTER_1 = {"Retry-After": "1"}
_PRECONDITIONS = {
    "AUCTION_NOT_OPEN": ("auction-not-open", "the auction has not started yet"),
    "AUCTION_CLOSED": ("auction-closed", "the auction has ended"),
    "BUY_NOW_UNAVAILABLE": (
        "buy-now-unavailable",
        "this item cannot be bought now: it has no buy-now price, or it has a bid already",
    ),
}
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)


def error_info(
    code: grpc.StatusCode, trailing: Iterable[tuple[str, str | bytes]] | None
) -> error_details_pb2.ErrorInfo | None:
    """The first `ErrorInfo` in the rich status trailer of domain `auction.v1`, if any."""
    if trailing is None:
        return None
    for key, value in trailing:
        if key != DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            rich = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        if rich.code != code.value[0]:
            return None
        return _info_in(rich)
    return None


def _info_in(rich: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    for detail in rich.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == DOMAIN:
                return info
    return None


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def problem_from_rich_status(rich: status_pb2.Status) -> ProblemError:
    """A bid's rejection from a PlaceBids outcome: the same problem PlaceBid's failure would give."""
    code = _CODES.get(rich.code, grpc.StatusCode.UNKNOWN)
    return _problem(code, rich.message, lambda: _info_in(rich))


def problem_for_status(
    code: grpc.StatusCode, message: str, trailing: Iterable[tuple[str, str | bytes]] | None
) -> ProblemError:
    """Map one gRPC status (code, message, trailing metadata) to the problem the caller sees."""
    return _problem(code, message, lambda: error_info(code, trailing))


def _problem(
    code: grpc.StatusCode, message: str, details: Callable[[], error_details_pb2.ErrorInfo | None]
) -> ProblemError:
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        info = details()
        reason = info.reason if info is not None else ""
        if reason == "BID_TOO_LOW":
            assert info is not None
            return _bid_too_low(info)
        slug, detail = _PRECONDITIONS.get(reason, ("conflict", "the item's state does not allow this"))
        return ProblemError(409, slug, detail)
    if code is grpc.StatusCode.NOT_FOUND:
        return ProblemError(404, "item-not-found", _caller_message(message, "no such item"))
    if code is grpc.StatusCode.INVALID_ARGUMENT or code is grpc.StatusCode.OUT_OF_RANGE:
        info = details()
        if info is not None and info.reason == "IDEMPOTENCY_KEY_REUSED":
            return ProblemError(
                422,
                "idempotency-key-reused",
                "this Idempotency-Key was already used with a different request",
            )
        detail = _caller_message(message, "the request is not valid")
        errors = [{"loc": [], "msg": detail, "type": "invalid_argument"}]
        return ProblemError(422, "validation-error", detail, extensions={"errors": errors})
    if code in _TRANSIENT:
        return unavailable("the service is temporarily unavailable; retry shortly")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ProblemError(429, "rate-limited", "too many requests; retry shortly", headers=_RETRY_AFTER_1)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return unauthorized("the request was not authenticated")
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return ProblemError(403, "forbidden", "not allowed")
    if code is grpc.StatusCode.ALREADY_EXISTS:
        return ProblemError(409, "conflict", "the resource already exists")
    return ProblemError(502, "upstream-error", "an upstream service failed")


def problem_from_rpc_error(err: grpc.aio.AioRpcError) -> ProblemError:
    """`problem_for_status` for a failed `grpc.aio` call."""
    # grpc-stubs types this as the sync API's `_Metadatum` tuple; grpc.aio returns `aio.Metadata`,
    # which iterates as (key, value) pairs.
    trailing = cast("Iterable[tuple[str, str | bytes]] | None", err.trailing_metadata())
    return problem_for_status(err.code(), err.details() or "", trailing)


def _bid_too_low(info: error_details_pb2.ErrorInfo) -> ProblemError:
    raw = info.metadata.get("min_next_bid", "")
    try:
        min_next_bid = int(raw)
    except ValueError:
        return ProblemError(409, "bid-too-low", "the bid is below the minimum next bid")
    return ProblemError(
        409,
        "bid-too-low",
        f"the minimum next bid is {min_next_bid}",
        extensions={"min_next_bid": min_next_bid},
    )


def _caller_message(message: str, fallback: str) -> str:
    """The upstream message for statuses whose messages are written for callers, bounded."""
    return message[:MAX_MESSAGE_CHARS] if message else fallback
