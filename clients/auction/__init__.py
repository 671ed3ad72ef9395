"""The auction platform's Python SDK.

REST: `AsyncAuctionClient` (and `AuctionClient`, its blocking wrapper) with typed models generated from
the edge's OpenAPI document, retries for calls that are safe to repeat, and automatic idempotency keys
for bids. Errors are `AuctionError` subclasses that mirror the API's problem types. gRPC for internal
callers: the generated `auction.v1` package and `auction.rpc.connect`. Live: `watch_item`, an async
iterator over an item's events from the WebSocket fan-out that reconnects and resumes by itself and
ends after the auction's `Closed` event. Notices: `watch_notices(token)`, the token's bidder's outbid, won,
lost and extended notices across items (`auction.notices`).
"""

# The public names are loaded lazily (PEP 562): the servers import the generated `auction.v1` stubs,
# which runs this module, and must not pull in the SDK's httpx, pydantic, websockets and jwt with them.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auction.errors import (
        ApiError,
        AuctionClosed,
        AuctionError,
        AuctionNotOpen,
        BidTooLow,
        BuyNowUnavailable,
        ClientError,
        Conflict,
        Forbidden,
        IdempotencyKeyReused,
        NotFound,
        RateLimited,
        ServerError,
        ServiceUnavailable,
        TransportError,
        Unauthorized,
        ValidationFailed,
    )
    from auction.live import (
        BidPlaced,
        Closed,
        Extended,
        ItemCreated,
        ItemEvent,
        ItemStream,
        LiveEvent,
        LiveItemNotFound,
        LiveStreamError,
        OtherEvent,
        Outcome,
        Reset,
        Snapshot,
        watch_item,
    )
    from auction.models import (
        Bid,
        BidResult,
        BidsPage,
        IncrementStep,
        Item,
        ItemList,
        SoftCloseRequest,
        Status,
    )
    from auction.notices import (
        AuctionExtended,
        Lost,
        Notice,
        NoticeAuthError,
        NoticeStream,
        OtherNotice,
        Outbid,
        Won,
        watch_notices,
    )
    from auction.rest import AsyncAuctionClient
    from auction.retry import RetryPolicy
    from auction.sync import AuctionClient
    from auction.tokens import mint_dev_token

_SUBMODULE: dict[str, str] = {
    "ApiError": "auction.errors",
    "AsyncAuctionClient": "auction.rest",
    "AuctionClient": "auction.sync",
    "AuctionClosed": "auction.errors",
    "AuctionError": "auction.errors",
    "AuctionExtended": "auction.notices",
    "AuctionNotOpen": "auction.errors",
    "Bid": "auction.models",
    "BidPlaced": "auction.live",
    "BidResult": "auction.models",
    "BidTooLow": "auction.errors",
    "BidsPage": "auction.models",
    "BuyNowUnavailable": "auction.errors",
    "ClientError": "auction.errors",
    "IncrementStep": "auction.models",
    "Closed": "auction.live",
    "Conflict": "auction.errors",
    "Extended": "auction.live",
    "Forbidden": "auction.errors",
    "IdempotencyKeyReused": "auction.errors",
    "Item": "auction.models",
    "ItemCreated": "auction.live",
    "ItemEvent": "auction.live",
    "ItemList": "auction.models",
    "ItemStream": "auction.live",
    "LiveEvent": "auction.live",
    "LiveItemNotFound": "auction.live",
    "LiveStreamError": "auction.live",
    "Lost": "auction.notices",
    "NotFound": "auction.errors",
    "Notice": "auction.notices",
    "NoticeAuthError": "auction.notices",
    "NoticeStream": "auction.notices",
    "OtherEvent": "auction.live",
    "OtherNotice": "auction.notices",
    "Outbid": "auction.notices",
    "Outcome": "auction.live",
    "RateLimited": "auction.errors",
    "Reset": "auction.live",
    "RetryPolicy": "auction.retry",
    "ServerError": "auction.errors",
    "ServiceUnavailable": "auction.errors",
    "Snapshot": "auction.live",
    "SoftCloseRequest": "auction.models",
    "Status": "auction.models",
    "TransportError": "auction.errors",
    "Unauthorized": "auction.errors",
    "ValidationFailed": "auction.errors",
    "Won": "auction.notices",
    "mint_dev_token": "auction.tokens",
    "watch_item": "auction.live",
    "watch_notices": "auction.notices",
}
"""Each public name and the submodule that defines it."""

__all__ = [
    "ApiError",
    "AsyncAuctionClient",
    "AuctionClient",
    "AuctionClosed",
    "AuctionError",
    "AuctionExtended",
    "AuctionNotOpen",
    "Bid",
    "BidPlaced",
    "BidResult",
    "BidTooLow",
    "BidsPage",
    "BuyNowUnavailable",
    "ClientError",
    "Closed",
    "Conflict",
    "Extended",
    "Forbidden",
    "IdempotencyKeyReused",
    "IncrementStep",
    "Item",
    "ItemCreated",
    "ItemEvent",
    "ItemList",
    "ItemStream",
    "LiveEvent",
    "LiveItemNotFound",
    "LiveStreamError",
    "Lost",
    "NotFound",
    "Notice",
    "NoticeAuthError",
    "NoticeStream",
    "OtherEvent",
    "OtherNotice",
    "Outbid",
    "Outcome",
    "RateLimited",
    "Reset",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Snapshot",
    "SoftCloseRequest",
    "Status",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "Won",
    "mint_dev_token",
    "watch_item",
    "watch_notices",
]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first use, and cache the name here."""
    module = _SUBMODULE.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own names plus the lazily loaded public ones."""
    return sorted({*globals(), *__all__})
