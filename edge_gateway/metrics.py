"""Prometheus metrics and the outermost request guard that records them.

`MetricsMiddleware` is the one layer every request passes, so it is also where an exception that no
handler claimed becomes the 500 `internal-error` problem, once, logged with its traceback. (Starlette's
own `Exception` handler would answer the same and then re-raise, logging the traceback a second time.)

Per-request cost is kept low: label children are resolved once per (route, method, status) and cached,
the route label is the matched route's template (so absurd paths cannot blow up cardinality), and each
app has its own registry (tests build many apps in one process).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from edge_gateway.problems import internal_error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = structlog.get_logger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"


class EdgeMetrics:
    """The gateway's metrics; one instance per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "edge_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "edge_http_request_duration_seconds",
            "Time from request start to the end of the app's answer, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._grpc_errors = Counter(
            "edge_grpc_errors_total",
            "Failed gRPC calls to the bidder and the archiver, by method and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._requests.labels(route, method, str(status))
            self._request_children[key] = counter
        counter.inc()
        histogram = self._latency_children.get(route)
        if histogram is None:
            histogram = self._latency.labels(route)
            self._latency_children[route] = histogram
        histogram.observe(seconds)

    def grpc_error(self, method: str, code: str) -> None:
        self._grpc_errors.labels(method, code).inc()

    def render(self) -> bytes:
        """The text exposition format for `/metrics`."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request; turns unclaimed exceptions into a logged 500 problem."""

    def __init__(self, app: ASGIApp, metrics: EdgeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            _log.exception("unhandled exception", method=scope["method"], path=scope["path"])
            status = 500
            if started:
                raise  # half-sent answer: let the server drop the connection
            await internal_error_response(scope["path"])(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = scope["method"]
            self.metrics.observe_request(
                route, method if method in _METHODS else "OTHER", status, time.perf_counter() - start
            )
