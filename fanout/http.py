"""Everything decided at the HTTP request, before any WebSocket exists (websockets' `process_request`).

`/healthz` and `/metrics` are answered here, on the WebSocket port. For `/ws/items/{id}` the request is
checked (path, `since`, shutdown, connection limit) and the item and `since` are recorded on the
connection; the Origin allow-list is then enforced by websockets itself (403) when it accepts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

if TYPE_CHECKING:
    from websockets.http11 import Request

    from fanout.connection import ViewerConnection
    from fanout.metrics import FanoutMetrics

_VIEWER_PATH = re.compile(r"^/ws/items/([^/]{1,256})$")
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

    def __call__(self, connection: ViewerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            if self._healthy():
                return plain(HTTPStatus.OK, b"ok\n")
            return plain(HTTPStatus.SERVICE_UNAVAILABLE, b"redis unreachable\n")
        if url.path == "/metrics":
            return plain(HTTPStatus.OK, self._metrics.render(), METRICS_CONTENT_TYPE)
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
        if not self.accepting:
            return self._reject("shutting-down", HTTPStatus.SERVICE_UNAVAILABLE, b"shutting down\n")
        if len(connection.server.all_connections) >= self._max_connections:
            return self._reject("capacity", HTTPStatus.SERVICE_UNAVAILABLE, b"too many connections\n")
        connection.item_id = match.group(1)
        connection.since = since
        return None

    def _reject(self, reason: str, status: HTTPStatus, body: bytes) -> Response:
        self._metrics.rejected.labels(reason).inc()
        return plain(status, body)
