"""The SDK's exceptions: one class per problem type the REST API answers with.

AuctionError
├── TransportError              the request never got an answer (connection, timeout)
└── ApiError                    an answer with a problem+json body (status, type, detail)
    ├── ClientError             4xx
    │   ├── Unauthorized        401
    │   ├── Forbidden           403
    │   ├── NotFound            404 (item-not-found, not-found)
    │   ├── Conflict            409
    │   │   ├── BidTooLow       bid-too-low, carries min_next_bid
    │   │   ├── AuctionNotOpen  auction-not-open
    │   │   ├── AuctionClosed   auction-closed (also: another buyer bought it first)
    │   │   └── BuyNowUnavailable buy-now-unavailable (no buy-now price, or a bid came first)
    │   ├── ValidationFailed    422 validation-error, carries errors
    │   ├── IdempotencyKeyReused 422 idempotency-key-reused
    │   └── RateLimited         429, carries retry_after
    └── ServerError             5xx
        └── ServiceUnavailable  503, carries retry_after
"""

from __future__ import annotations

from typing import Any


class AuctionError(Exception):
    """Base of everything the SDK raises."""


class TransportError(AuctionError):
    """No answer: the connection failed or timed out (after the retries allowed)."""


class ApiError(AuctionError):
    """The API answered with an RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any], retry_after: float | None = None) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", ""))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.retry_after = retry_after
        super().__init__(f"{status} {self.type}: {self.detail or self.title}")


class ClientError(ApiError):
    pass


class Unauthorized(ClientError):
    pass


class Forbidden(ClientError):
    pass


class NotFound(ClientError):
    pass


class Conflict(ClientError):
    pass


class BidTooLow(Conflict):
    @property
    def min_next_bid(self) -> int:
        """The lowest amount that would have been accepted at that moment."""
        return int(self.problem["min_next_bid"])


class AuctionNotOpen(Conflict):
    pass


class AuctionClosed(Conflict):
    pass


class BuyNowUnavailable(Conflict):
    """The item cannot be bought now: it offers no buy-now price, or it has a bid already."""


class ValidationFailed(ClientError):
    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors", [])
        return errors if isinstance(errors, list) else []


class IdempotencyKeyReused(ClientError):
    pass


class RateLimited(ClientError):
    pass


class ServerError(ApiError):
    pass


class ServiceUnavailable(ServerError):
    pass


_BY_TYPE: dict[str, type[ApiError]] = {
    "bid-too-low": BidTooLow,
    "auction-not-open": AuctionNotOpen,
    "auction-closed": AuctionClosed,
    "buy-now-unavailable": BuyNowUnavailable,
    "idempotency-key-reused": IdempotencyKeyReused,
    "validation-error": ValidationFailed,
    "item-not-found": NotFound,
    "not-found": NotFound,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(status: int, problem: dict[str, Any], retry_after: float | None) -> ApiError:
    """The most specific exception for an answer: by problem type, then status, then class of status."""
    cls = _BY_TYPE.get(str(problem.get("type", ""))) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ClientError
    return cls(status, problem, retry_after)
