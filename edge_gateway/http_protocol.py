"""The gateway's HTTP/1.1 server protocol: uvicorn's httptools protocol with a bounded request head.

uvicorn 0.54 bounds neither the size of a request head under httptools (`h11_max_incomplete_event_size`
only reaches its h11 protocol) nor the time a client may take to send it: 32 MB of headers were
buffered and answered 200, and a slowloris client (a head sent a byte at a time, or a connection
that never sends one) held its connection forever. This subclass adds:

- a head size cap, `max_header_bytes` (passed as uvicorn's `h11_max_incomplete_event_size`, so h11
  honours the same number): the request target and the header fields of one request. Complete fields
  are counted exactly from the parser's callbacks and a field still arriving by the chunks received
  entirely inside the head, so the cap is overrun by at most one socket read before the answer: 431
  (414 when the request target alone is too long), then the connection is closed;
- a head timeout, `header_timeout_seconds` (`EdgeServerConfig`): from the connection's opening, or from
  the first byte after a completed answer, to the end of the request's head. On expiry the connection
  is closed, after a 408 if part of a request had arrived;
- problem+json instead of uvicorn's `text/plain` 400: 400 `bad-request` for malformed requests and,
  as RFC 9110 §15.6.2 asks for a method the server does not recognise (`BREW`), 501 `not-implemented`
  (a request line that does not even start with a method token, such as a TLS handshake, is a 400).
  A known method that a path does not support is the app's 405 with `Allow`.

Every answer written here carries the security headers of `http_semantics` and `Connection: close`.
Only the head is bounded here; the body is bounded by `BodyLimitMiddleware`.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from edge_gateway.http_semantics import SECURITY_HEADERS
from edge_gateway.problems import PROBLEM_MEDIA_TYPE, ProblemError

if TYPE_CHECKING:
    from uvicorn.server import ServerState

# A request line's start: a method token (RFC 9110 §5.6.2 tchar) and a space, after optional CRLFs.
_METHOD_TOKEN = re.compile(rb"[\r\n]*[!#$%&'*+.^_`|~0-9A-Za-z-]+ ")
DEFAULT_MAX_HEADER_BYTES = 16_384
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class EdgeServerConfig(uvicorn.Config):
    """`uvicorn.Config` plus the head timeout; module-level so worker processes can unpickle it."""

    def __init__(self, app: Any, *, header_timeout_seconds: float, **options: Any) -> None:
        super().__init__(app, **options)
        self.header_timeout_seconds = header_timeout_seconds


class _Refusal(Exception):
    """Raised from a parser callback to stop parsing and answer `problem` instead."""

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class EdgeHttpProtocol(HttpToolsProtocol):
    """See the module docstring. Pass as uvicorn's `http` option."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_head = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self._head_timeout = (
            config.header_timeout_seconds
            if isinstance(config, EdgeServerConfig)
            else DEFAULT_HEADER_TIMEOUT_SECONDS
        )
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # between a request's first byte and the end of its head
        self._head_began_now = False  # the current head began in the chunk being parsed
        self._field_bytes = 0  # complete header fields of the current head
        self._chunk_bytes = 0  # chunks received entirely inside the current head

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._head_timer is None and not self._in_head and self._idle():
            self._arm_head_timer()  # bytes of a new request (or stray CRLFs) on a kept-alive connection
        continuing, self._head_began_now = self._in_head, False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserCallbackError as exc:
            refusal = exc.__context__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.problem)
            else:
                self._refuse(_bad_request())
            return
        except httptools.HttpParserInvalidMethodError:
            # The parser says so for any bad start; only a well-formed method token is an unknown method.
            if _METHOD_TOKEN.match(data):
                self._refuse(
                    ProblemError(501, "not-implemented", "this server does not implement that method")
                )
            else:
                self._refuse(_bad_request())
            return
        except httptools.HttpParserError:
            self._refuse(_bad_request())
            return
        if self._in_head:
            if continuing and not self._head_began_now:
                self._chunk_bytes += len(data)
            if max(self._chunk_bytes, self._field_bytes + len(self.url)) > self._max_head:
                self._refuse(_head_too_large(self._max_head))

    def send_400_response(self, msg: str) -> None:
        self._refuse(_bad_request())

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = self._head_began_now = True
        self._field_bytes = self._chunk_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self._max_head:
            detail = f"the request target exceeds {self._max_head} bytes"
            raise _Refusal(ProblemError(414, "uri-too-long", detail))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._field_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._field_bytes + len(self.url) > self._max_head:
            raise _Refusal(_head_too_large(self._max_head))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    # The head timer and refusals

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            detail = f"the request head was not received within {self._head_timeout:g} s"
            self._refuse(ProblemError(408, "request-timeout", detail))
        elif self._idle() and not self.transport.is_closing():
            self.transport.close()  # opened (or kept alive) but no request began: nothing to answer

    def _refuse(self, problem: ProblemError) -> None:
        """Answer `problem` (unless an earlier request's answer is still due) and close."""
        self._in_head = False
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        if self._idle():
            self.transport.write(_answer_bytes(problem, self.server_state.default_headers))
        self.transport.close()


def _bad_request() -> ProblemError:
    return ProblemError(400, "bad-request", "the request is not valid HTTP/1.1")


def _head_too_large(limit: int) -> ProblemError:
    return ProblemError(431, "header-fields-too-large", f"the request head exceeds {limit} bytes")


def _answer_bytes(problem: ProblemError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    body = orjson.dumps(problem.body())
    headers = [
        *default_headers,
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    lines = [STATUS_LINE[problem.status], *(name + b": " + value + b"\r\n" for name, value in headers)]
    return b"".join([*lines, b"\r\n", body])
