"""The fan-out's exceptions, and the one place they become WebSocket close codes.

FanoutError
├── ItemNotFound          the bidder does not know the item        -> error message, close 4404
├── Unauthenticated       `/ws/me` without a valid bidder token    -> error message, close 4401
├── UpstreamUnavailable   the bidder or Redis cannot answer now    -> error message, close 1013
└── HistoryGone           the history no longer holds what a feed  -> close 1013 (the viewer
                          must deliver (a long Redis outage)          resumes with `since` and gets
                                                                      `reset` + a snapshot)
"""

from __future__ import annotations

from typing import NamedTuple

from auction_contract import errors as contract_errors

CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_NOT_FOUND = 4404
CLOSE_UNAUTHENTICATED = 4401
# A close reason is at most 123 bytes (RFC 6455 5.5: control frames carry at most 125).
_MAX_REASON_BYTES = 120


class FanoutError(Exception):
    """Base of every error the fan-out turns into a close code."""


class ItemNotFound(FanoutError, contract_errors.ItemNotFound):
    def __init__(self, item_id: str) -> None:
        super().__init__(item_id, f"no item {item_id!r}")


class Unauthenticated(FanoutError):
    """No token in time, or a malformed, badly signed, expired or over-long one; `str()` says which."""


class UpstreamUnavailable(FanoutError):
    """The bidder (snapshots) or Redis (history, Pub/Sub) failed; worth retrying later."""


class HistoryGone(FanoutError):
    """Events a viewer needs are no longer in the item's capped history."""


class Closing(NamedTuple):
    code: int
    error_code: str | None
    reason: str


def closing_for(exc: FanoutError) -> Closing:
    """How a viewer is told about `exc`: the close code, the `error` message code (if any), the reason."""
    if isinstance(exc, ItemNotFound):
        return Closing(CLOSE_NOT_FOUND, "item-not-found", "unknown item")
    if isinstance(exc, Unauthenticated):
        reason = str(exc).encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
        return Closing(CLOSE_UNAUTHENTICATED, "unauthorized", reason)
    if isinstance(exc, HistoryGone):
        return Closing(CLOSE_TRY_AGAIN_LATER, None, "resume with since")
    return Closing(CLOSE_TRY_AGAIN_LATER, "unavailable", "try again later")
