"""What the app shares with its routes: built by `create_app`, clients filled in by the lifespan.

It lives on `app.state.edge` (not in module globals) so several apps, e.g. in tests, never share a
token cache, a rate limiter or a gRPC channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request

    from edge_gateway.auth import TokenVerifier
    from edge_gateway.clients import BidderClient, HistoryClient
    from edge_gateway.metrics import EdgeMetrics
    from edge_gateway.ratelimit import RateLimiter
    from edge_gateway.settings import EdgeSettings


@dataclass(slots=True)
class EdgeState:
    settings: EdgeSettings
    verifier: TokenVerifier
    limiter: RateLimiter
    metrics: EdgeMetrics
    # Per client address; None when switched off (rate 0 in the settings).
    read_limiter: RateLimiter | None = None
    auth_failures: RateLimiter | None = None
    # Set while the lifespan runs; None before startup and after shutdown.
    bidder: BidderClient | None = None
    # None also when no history target is configured.
    history: HistoryClient | None = None


def edge_state(request: Request) -> EdgeState:
    """The state of the app serving `request`."""
    state: EdgeState = request.app.state.edge
    return state
