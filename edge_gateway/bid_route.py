"""`POST /items/{item_id}/bid` as a raw ASGI handler, answering before FastAPI's middleware and routing.

Why: in a bidding war this is nearly every request, and FastAPI's per-request work (the middleware
stack, the router's regex walk, `Request` and dependency resolution, the exception-handler machinery)
cost several times the route's own work: the edge process, not Redis or the bidder, was the
platform's bottleneck. The app (`app.EdgeApp`) hands it, before FastAPI's own `__call__`, exactly the
requests `POST /items/<one segment>/bid`; everything else, `HEAD`, `OPTIONS`, a trailing slash or a
wrong method on the same path included, goes to FastAPI unchanged.

It answers exactly as the FastAPI route in `routes_items` does (same checks in the same order, same
problem documents, same headers; `tests/test_edge_bid_route.py` compares the two byte for byte), and
that route stays: it declares the endpoint for the OpenAPI document and serves bids when
`EDGE_RAW_BID_ROUTE=false`. The order, as the layers it replaces give it:

1. a declared `Content-Length` over the body limit: 413, before anything else (`BodyLimitMiddleware`);
2. authentication, authorisation and the rate limits (`auth.authorize`): 401 / 429;
3. no bidder connection (shutting down): 503;
4. the `Idempotency-Key` header: 422 with FastAPI's error list;
5. an item id that cannot exist: 404; then the content type: 415; then the body, read here with the
   limit enforced while it streams (413) and validated by the same pydantic model and, for a
   maximum or a body without an amount, the same `body.bid_terms` (422);
6. the group-committed gRPC call (`BidderClient.place_bid`), and 201 with the result.

Every answer carries the security headers of `http_semantics`, is counted by the gateway's metrics
under the route template, and an unexpected exception becomes the logged 500 problem, as in
`MetricsMiddleware`. A client that disconnects mid-body gets no answer and is counted as 499.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from pydantic import TypeAdapter, ValidationError

from auction_contract.rules import is_item_id
from edge_gateway.auth import authorize
from edge_gateway.body import bid_terms, is_json_media_type
from edge_gateway.convert import bid_result_json
from edge_gateway.http_semantics import SECURITY_HEADERS
from edge_gateway.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemError,
    item_not_found,
    payload_too_large,
    unavailable,
    unsupported_media_type,
    validation_problem,
)
from edge_gateway.schemas import BidRequest, IdempotencyKeyText

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from edge_gateway.state import EdgeState

_log = structlog.get_logger(__name__)

BID_ROUTE = "/items/{item_id}/bid"
_PREFIX, _SUFFIX = "/items/", "/bid"
_MIN_PATH = len(_PREFIX) + 1 + len(_SUFFIX)
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection before the answer"

_KEY_FAST = re.compile(r"[\x21-\x7e]{1,128}")
_KEY_ADAPTER: TypeAdapter[str] = TypeAdapter(IdempotencyKeyText)
_KEY_LOC = ("header", "Idempotency-Key")
_BODY_LOC = ("body",)

_JSON_HEADERS = ((b"content-type", b"application/json"), *SECURITY_HEADERS)
_PROBLEM_HEADERS = ((b"content-type", PROBLEM_MEDIA_TYPE.encode()), *SECURITY_HEADERS)
_INTERNAL_ERROR = ProblemError(500, "internal-error", "an unexpected error occurred; it was logged")


class _ClientGone(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


def bid_item_id(path: str) -> str | None:
    """The `item_id` of a path that FastAPI would route to the bid route, else None."""
    if len(path) < _MIN_PATH or not path.startswith(_PREFIX) or not path.endswith(_SUFFIX):
        return None
    item_id = path[len(_PREFIX) : -len(_SUFFIX)]
    return None if "/" in item_id else item_id


class RawBidRoute:
    """See the module docstring; `EdgeApp` calls `serve` for the requests `bid_item_id` picks."""

    def __init__(self, state: EdgeState) -> None:
        self.state = state
        self.max_body_bytes = state.settings.max_body_bytes

    async def serve(self, scope: Scope, receive: Receive, send: Send, item_id: str) -> None:
        start = time.perf_counter()
        try:
            status, body, headers = await self._answer(scope, receive, item_id)
        except ProblemError as problem:
            status, body, headers = _problem(problem, scope["path"])
        except _ClientGone:
            self.state.metrics.observe_request(BID_ROUTE, "POST", CLIENT_CLOSED, time.perf_counter() - start)
            return
        except Exception:
            _log.exception("unhandled exception", method="POST", path=scope["path"])
            status, body, headers = _problem(_INTERNAL_ERROR, scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self.state.metrics.observe_request(BID_ROUTE, "POST", status, time.perf_counter() - start)

    async def _answer(
        self, scope: Scope, receive: Receive, item_id: str
    ) -> tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]:
        authorization = content_type = content_length = idempotency_key = None
        for name, value in scope["headers"]:
            # The first of repeated fields counts, as `starlette.datastructures.Headers.get` has it.
            if name == b"authorization":
                authorization = authorization if authorization is not None else value.decode("latin-1")
            elif name == b"content-type":
                content_type = content_type if content_type is not None else value.decode("latin-1")
            elif name == b"content-length":
                content_length = content_length if content_length is not None else value
            elif name == b"idempotency-key":
                idempotency_key = idempotency_key if idempotency_key is not None else value.decode("latin-1")
        declared = -1
        if content_length is not None:
            declared = int(content_length) if content_length.isdigit() else -1
            if declared > self.max_body_bytes:
                raise payload_too_large(self.max_body_bytes)
        state = self.state
        principal = await authorize(state, authorization, scope, admin_only=False)
        bidder = state.bidder
        if bidder is None:
            raise unavailable("the gateway is not connected to the bidder")
        if idempotency_key is not None and _KEY_FAST.fullmatch(idempotency_key) is None:
            _check_key(idempotency_key)
        if not is_item_id(item_id):
            raise item_not_found(item_id)
        if not is_json_media_type(content_type):
            raise unsupported_media_type()
        raw = await self._body(receive, counted=declared < 0)
        try:
            terms = BidRequest.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise validation_problem(errors, _BODY_LOC) from None
        amount, max_amount = terms.amount, terms.max_amount
        if max_amount is not None or amount is None:  # a plain bid skips the bid kinds' checks
            amount = bid_terms(amount, max_amount)
        result = await bidder.place_bid(item_id, principal.sub, amount, idempotency_key or "", max_amount)
        return 201, orjson.dumps(bid_result_json(result)), _JSON_HEADERS

    async def _body(self, receive: Receive, *, counted: bool) -> bytes:
        """The whole body; without a declared length (chunked), 413 as soon as it passes the limit.
        A declared length needs no count: the HTTP server never delivers more than it declares."""
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        body: bytes = message.get("body", b"")
        if counted and len(body) > self.max_body_bytes:
            raise payload_too_large(self.max_body_bytes)
        if not message.get("more_body", False):
            return body
        chunks = [body]
        total = len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            total += len(chunk)
            if counted and total > self.max_body_bytes:
                raise payload_too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _check_key(idempotency_key: str) -> None:
    """Raise the 422 that FastAPI's header validation gives for a bad key (the slow path only)."""
    try:
        _KEY_ADAPTER.validate_python(idempotency_key)
    except ValidationError as exc:
        errors: list[Any] = [{**error, "loc": _KEY_LOC} for error in exc.errors(include_url=False)]
        raise validation_problem(errors) from None


def _problem(problem: ProblemError, instance: str) -> tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]:
    named = (problem.headers or {}).items()
    extra = tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in named)
    return problem.status, orjson.dumps(problem.body(instance)), (*_PROBLEM_HEADERS, *extra)
