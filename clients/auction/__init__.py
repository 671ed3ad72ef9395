"""The auction platform's Python SDK.

REST: `AsyncAuctionClient` (and `AuctionClient`, its blocking wrapper) with typed models generated from
the edge's OpenAPI document, retries for calls that are safe to repeat, and automatic idempotency keys
for bids. Errors are `AuctionError` subclasses that mirror the API's problem types. gRPC for internal
callers: the generated `auction.v1` package and `auction.rpc.connect`. Live: `watch_item`, an async
iterator over an item's events from the WebSocket fan-out that reconnects and resumes by itself.
"""

from auction.errors import (
    ApiError,
    AuctionClosed,
    AuctionError,
    AuctionNotOpen,
    BidTooLow,
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
    ItemCreated,
    ItemEvent,
    ItemStream,
    LiveEvent,
    LiveItemNotFound,
    LiveStreamError,
    OtherEvent,
    Reset,
    Snapshot,
    watch_item,
)
from auction.models import Bid, BidResult, BidsPage, Item, ItemList, Status
from auction.rest import AsyncAuctionClient
from auction.retry import RetryPolicy
from auction.sync import AuctionClient
from auction.tokens import mint_dev_token

__all__ = [
    "ApiError",
    "AsyncAuctionClient",
    "AuctionClient",
    "AuctionClosed",
    "AuctionError",
    "AuctionNotOpen",
    "Bid",
    "BidPlaced",
    "BidResult",
    "BidTooLow",
    "BidsPage",
    "ClientError",
    "Conflict",
    "Forbidden",
    "IdempotencyKeyReused",
    "Item",
    "ItemCreated",
    "ItemEvent",
    "ItemList",
    "ItemStream",
    "LiveEvent",
    "LiveItemNotFound",
    "LiveStreamError",
    "NotFound",
    "OtherEvent",
    "RateLimited",
    "Reset",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Snapshot",
    "Status",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "mint_dev_token",
    "watch_item",
]
