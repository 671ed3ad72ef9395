"""`create_app(settings)`: the FastAPI application, its lifespan-owned gRPC channels, and its layers.

Request path, outermost first: `EdgeApp.__call__`, which hands `POST /items/{id}/bid` to the raw bid
route (`bid_route`) before everything below; Starlette's server-error guard (never reached: see
`metrics.py`), `HttpSemanticsMiddleware` (HEAD as GET, the security headers of every answer),
`MetricsMiddleware`, `BodyLimitMiddleware`, Starlette's exception middleware (problem handlers), the
router (the REST API, the operational endpoints and the web page under `/app/`, `web_app`). The
request head is bounded before any of this, by the HTTP server's protocol (`http_protocol`).
FastAPI's native OpenTelemetry instrumentation is switched off: with no provider configured it only
costs provider lookups per request, and the gateway exports Prometheus metrics instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from auction_common.grpc_channels import upstream_channel
from edge_gateway import routes_items, routes_ops, web_app
from edge_gateway.auth import verifier_from_settings
from edge_gateway.bid_route import RawBidRoute, bid_item_id
from edge_gateway.body_limit import BodyLimitMiddleware
from edge_gateway.clients import BidderClient, HistoryClient
from edge_gateway.http_semantics import HttpSemanticsMiddleware
from edge_gateway.metrics import EdgeMetrics, MetricsMiddleware
from edge_gateway.openapi import install_openapi
from edge_gateway.problems import install_problem_handlers
from edge_gateway.ratelimit import RateLimiter
from edge_gateway.responses import OrjsonResponse
from edge_gateway.state import EdgeState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Receive, Scope, Send

    from edge_gateway.settings import EdgeSettings

DESCRIPTION = """\
REST front of the auction platform; it translates each call to the bidder's gRPC API.

Money is an integer count of minor units of the item's `currency`, at most 10^15: any JSON number with
no fractional part (`100`, `100.0`, `1e2`); a fraction such as `100.5` is refused (422). Answers always
carry plain integers. Errors are `application/problem+json` (RFC 9457) with a stable `type`
slug. Bidding needs a `bidder` or `admin` bearer token, creating items an `admin` one; reading needs
none. Reads and failed authentications are rate-limited per client address, writes per bidder (429
with `Retry-After`). Before any route, the server answers a request head over its size limit with 431
(414 for the target alone), one not received in time with 408, a malformed request with 400 and an
unknown method with 501, each as a problem, and closes the connection.
"""


class EdgeApp(FastAPI):
    """FastAPI, except that bids go to the raw bid route before any FastAPI or Starlette layer runs."""

    raw_bid_route: RawBidRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = self.raw_bid_route
        if raw is not None and scope["type"] == "http" and scope["method"] == "POST":
            item_id = None if scope.get("root_path") else bid_item_id(scope["path"])
            if item_id is not None:
                await raw.serve(scope, receive, send, item_id)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: EdgeSettings) -> FastAPI:
    """Build the gateway; channels open when the lifespan starts and close when it ends."""
    metrics = EdgeMetrics()
    verifier = verifier_from_settings(settings)
    state = EdgeState(
        settings=settings,
        verifier=verifier,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        metrics=metrics,
        read_limiter=_client_limiter(
            settings.read_rate_limit_per_second, settings.read_rate_limit_burst, settings
        ),
        auth_failures=_client_limiter(
            settings.auth_failure_rate_limit_per_second, settings.auth_failure_rate_limit_burst, settings
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One channel per upstream: HTTP/2 multiplexes every concurrent call over it.
        bidder_channel = upstream_channel(settings.bidder_target, settings)
        history_channel = (
            upstream_channel(settings.history_target, settings) if settings.history_target else None
        )
        bidder = BidderClient(
            bidder_channel,
            settings.grpc_timeout_seconds,
            metrics,
            batch_max=settings.bid_batch_max,
            batch_in_flight=settings.bid_batch_in_flight,
        )
        state.bidder = bidder
        if history_channel is not None:
            state.history = HistoryClient(history_channel, settings.grpc_timeout_seconds, metrics)
        refresher = None
        if settings.jwt_jwks_url is not None:
            refresher = asyncio.create_task(verifier.refresh_keys_every(settings.jwt_jwks_refresh_seconds))
        try:
            yield
        finally:
            state.bidder = None
            state.history = None
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            await bidder.drain()
            await bidder_channel.close(grace=None)
            if history_channel is not None:
                await history_channel.close(grace=None)

    app = EdgeApp(
        title="Auction edge gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.edge = state
    install_problem_handlers(app)
    app.include_router(routes_items.router)
    app.include_router(routes_ops.router)
    app.include_router(web_app.web_router(settings))
    # Added last = outermost: metrics see the body limit's 413s too, and every answer gets the headers.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(HttpSemanticsMiddleware)
    if settings.raw_bid_route:
        app.raw_bid_route = RawBidRoute(state)
    install_openapi(app)
    return app


def _client_limiter(rate: float, burst: int, settings: EdgeSettings) -> RateLimiter | None:
    """A per-address limiter, or None when its rate is 0 (switched off)."""
    if rate == 0:
        return None
    return RateLimiter(rate, burst, max_buckets=settings.rate_limit_max_clients)
