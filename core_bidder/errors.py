"""The bidder's exception tree; `core_bidder.status` turns it into gRPC statuses in one place.

BidderError
├── InvalidArgument          bad input (INVALID_ARGUMENT)
│   └── IdempotencyKeyReused same key, other body (INVALID_ARGUMENT + reason)
├── ItemNotFound             (NOT_FOUND)
├── BidRejected              too low / not open / closed / buy-now unavailable (FAILED_PRECONDITION
│                            + reason)
├── StoreUnavailable         Redis unreachable or contention past the limit (UNAVAILABLE)
│   └── ReplicasBehind       applied on the primary, not acknowledged by enough replicas in time
│                            (UNAVAILABLE: a retry with the same idempotency key learns the outcome)
├── Unauthenticated          an operator call without the right credential (UNAUTHENTICATED)
└── PermissionDenied         operator calls are switched off (PERMISSION_DENIED)
"""

from __future__ import annotations

from enum import StrEnum

from auction_contract import errors as contract_errors


class RejectReason(StrEnum):
    BID_TOO_LOW = "BID_TOO_LOW"
    AUCTION_NOT_OPEN = "AUCTION_NOT_OPEN"
    AUCTION_CLOSED = "AUCTION_CLOSED"
    BUY_NOW_UNAVAILABLE = "BUY_NOW_UNAVAILABLE"


class BidderError(Exception):
    """Base of every error the bidder reports to a caller."""


class InvalidArgument(BidderError):
    pass


class IdempotencyKeyReused(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("idempotency key was already used with a different request")


class ItemNotFound(BidderError, contract_errors.ItemNotFound):
    def __init__(self, item_id: str) -> None:
        super().__init__(item_id)


class BidRejected(BidderError):
    def __init__(self, reason: RejectReason, min_next_bid: int | None = None) -> None:
        self.reason = reason
        self.min_next_bid = min_next_bid
        text = {
            RejectReason.BID_TOO_LOW: f"bid is below the minimum next bid {min_next_bid}",
            RejectReason.AUCTION_NOT_OPEN: "the auction has not started yet",
            RejectReason.AUCTION_CLOSED: "the auction has ended",
            RejectReason.BUY_NOW_UNAVAILABLE: "buy-now is not offered: no buy-now price, or a bid came first",
        }[reason]
        super().__init__(text)


class StoreUnavailable(BidderError):
    pass


class ReplicasBehind(StoreUnavailable):
    """The step ran on the primary (Redis cannot take it back) but fewer replicas than asked confirmed it
    within the timeout; see `core_bidder.replica_wait`."""

    def __init__(self, wanted: int, acknowledged: int, timeout_ms: int) -> None:
        self.wanted = wanted
        self.acknowledged = acknowledged
        super().__init__(
            f"{acknowledged} of {wanted} Redis replica(s) confirmed the write within {timeout_ms} ms; "
            "its outcome is not yet durable: retry with the same idempotency key"
        )


class Unauthenticated(BidderError):
    pass


class PermissionDenied(BidderError):
    pass
