"""Everything decided at the HTTP request, before any WebSocket exists (websockets' `process_request`).

`/healthz` and `/metrics` are answered here, on the WebSocket port. For `/ws/items/{id}` the request is
checked (path, `since`, shutdown, connection limit) and the item and `since` are recorded on the
connection; the Origin allow-list is then enforced by websockets itself (403) when it accepts.

`/ws/me` (per-bidder notices) takes the bidder's token from `Sec-WebSocket-Protocol: bearer, <jwt>` (what
a browser can send) or later from the first message, never from the URL: a token in the query is refused
with 400 (URLs end up in logs). The token is only recorded here; `fanout.me` verifies it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_subprotocol
from websockets.http11 import Response
from websockets.typing import Subprotocol

if TYPE_CHECKING:
    from websockets.http11 import Request

    from fanout.connection import ViewerConnection
    from fanout.metrics import FanoutMetrics

_VIEWER_PATH = re.compile(r"^/ws/items/([^/]{1,256})$")
NOTICES_PATH = "/ws/me"
BEARER = Subprotocol("bearer")
_TOKEN_QUERY = frozenset({"token", "access_token", "jwt"})
_SINCE = re.compile(r"^[0-9]{1,18}$")
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def plain(status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("X-Fanout-Pid", str(os.getpid())),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


class RequestGate:
    """The `process_request` hook; `healthy` and `accepting` are read at each request."""

    def __init__(
        self,
        metrics: FanoutMetrics,
        max_connections: int,
        healthy: Callable[[], bool],
    ) -> None:
        self._metrics = metrics
        self._max_connections = max_connections
        self._healthy = healthy
        self.accepting = True
        # Set by the server when `/ws/me` can verify tokens (AUCTION_JWT_SECRET given).
        self.notices_enabled = False

    def __call__(self, connection: ViewerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            if self._healthy():
                return plain(HTTPStatus.OK, b"ok\n")
            return plain(HTTPStatus.SERVICE_UNAVAILABLE, b"redis unreachable\n")
        if url.path == "/metrics":
            return plain(HTTPStatus.OK, self._metrics.render(), METRICS_CONTENT_TYPE)
        if url.path == NOTICES_PATH:
            return self._notices(connection, request, url.query)
        match = _VIEWER_PATH.match(url.path)
        if match is None:
            return self._reject("not-found", HTTPStatus.NOT_FOUND, b"no such endpoint\n")
        since: int | None = None
        if url.query:
            values = parse_qs(url.query, keep_blank_values=True).get("since")
            if values is not None:
                if len(values) != 1 or not _SINCE.match(values[0]):
                    return self._reject(
                        "bad-since", HTTPStatus.BAD_REQUEST, b"since must be an integer >= 0\n"
                    )
                since = int(values[0])
        refused = self._admit(connection)
        if refused is not None:
            return refused
        connection.item_id = match.group(1)
        connection.since = since
        return None

    def _notices(self, connection: ViewerConnection, request: Request, query: str) -> Response | None:
        if query and _TOKEN_QUERY & parse_qs(query, keep_blank_values=True).keys():
            return self._reject(
                "token-in-url", HTTPStatus.BAD_REQUEST,
                b"never put a token in the URL: send it in Sec-WebSocket-Protocol or the first message\n",
            )  # fmt: skip
        if not self.notices_enabled:
            return self._reject(
                "notices-off",
                HTTPStatus.SERVICE_UNAVAILABLE,
                b"notices are off: AUCTION_JWT_SECRET is not set\n",
            )
        refused = self._admit(connection)
        if refused is not None:
            return refused
        try:
            connection.bearer_token = bearer_token(request.headers)
        except InvalidHeader:
            return self._reject("bad-subprotocol", HTTPStatus.BAD_REQUEST, b"bad Sec-WebSocket-Protocol\n")
        connection.notices = True
        return None

    def _admit(self, connection: ViewerConnection) -> Response | None:
        """Shutdown and the connection limit, for every WebSocket path."""
        if not self.accepting:
            return self._reject("shutting-down", HTTPStatus.SERVICE_UNAVAILABLE, b"shutting down\n")
        if len(connection.server.all_connections) >= self._max_connections:
            return self._reject("capacity", HTTPStatus.SERVICE_UNAVAILABLE, b"too many connections\n")
        return None

    def _reject(self, reason: str, status: HTTPStatus, body: bytes) -> Response:
        self._metrics.rejected.labels(reason).inc()
        return plain(status, body)


def bearer_token(headers: Headers) -> str | None:
    """The `<jwt>` of `Sec-WebSocket-Protocol: bearer, <jwt>` (the value after `bearer`), or None."""
    offered = [p for value in headers.get_all("Sec-WebSocket-Protocol") for p in parse_subprotocol(value)]
    if BEARER in offered:
        at = offered.index(BEARER)
        if at + 1 < len(offered):
            return str(offered[at + 1])
    return None


def select_subprotocol(connection: ViewerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Answer `bearer` when offered (a browser fails the handshake unless one of its offers is chosen);
    otherwise no subprotocol, as before."""
    return BEARER if BEARER in offered else None
