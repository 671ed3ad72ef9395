"""Every error the gateway answers is an RFC 9457 `application/problem+json` document; built here only.

The gateway's exception tree (everything else a caller can trigger is translated into it):

    ProblemError                 carries status, type slug, detail, headers, extension members
    ├── raised by auth.py        401 unauthorized, 403 forbidden, 429 rate-limited, 503 unavailable (keys)
    ├── raised by deps.py        429 rate-limited (reads per client address)
    ├── raised by body.py        415 unsupported-media-type, 422 validation-error
    ├── raised by body_limit.py  413 payload-too-large (chunked bodies, while streaming)
    ├── built by http_protocol   400 bad-request, 408 request-timeout, 414 uri-too-long,
    │                            431 header-fields-too-large, 501 not-implemented (before any ASGI)
    └── raised by grpc_errors.py the bidder's / archiver's gRPC statuses

FastAPI's `RequestValidationError` and Starlette's `HTTPException` (unknown route, wrong method) are
rendered here too, and `internal_error_response` is the last resort for unexpected exceptions. A 405
lists in `Allow` every method the path supports (not only those of the first route that matched it),
and an OPTIONS request for a known path, which no route declares, is answered here with 204 and the
same `Allow`. `type` is a stable slug (`bid-too-low`), a relative URI reference as RFC 9457 allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from edge_gateway.http_semantics import allowed_methods

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Bounds on what a validation problem repeats back, so a hostile body cannot inflate the answer.
MAX_FIELD_ERRORS = 20
MAX_MESSAGE_CHARS = 300

TITLES: dict[str, str] = {
    "validation-error": "The request is not valid",
    "idempotency-key-reused": "The idempotency key was used with a different request",
    "unauthorized": "Authentication required",
    "forbidden": "Not allowed",
    "not-found": "No such resource",
    "item-not-found": "No such item",
    "method-not-allowed": "Method not allowed",
    "payload-too-large": "Request body too large",
    "unsupported-media-type": "Unsupported media type",
    "bid-too-low": "The bid is below the minimum next bid",
    "auction-not-open": "The auction has not started",
    "auction-closed": "The auction has ended",
    "buy-now-unavailable": "Buy-now is not available for this item",
    "conflict": "The request conflicts with the item's state",
    "rate-limited": "Too many requests",
    "unavailable": "Service temporarily unavailable",
    "not-ready": "Not ready",
    "upstream-error": "Upstream service error",
    "internal-error": "Internal error",
    "http-error": "HTTP error",
    "bad-request": "Malformed HTTP request",
    "request-timeout": "Request not received in time",
    "uri-too-long": "Request target too long",
    "header-fields-too-large": "Request header fields too large",
    "not-implemented": "Method not implemented",
}


class ProblemError(Exception):
    """An error with a defined problem+json rendering; raise it anywhere below the routes."""

    __slots__ = ("detail", "extensions", "headers", "problem_type", "status")

    def __init__(
        self,
        status: int,
        problem_type: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.problem_type = problem_type
        self.detail = detail
        self.headers = headers
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document; members in a fixed order so equal errors give equal bytes."""
        doc: dict[str, Any] = {
            "type": self.problem_type,
            "title": TITLES.get(self.problem_type, TITLES["http-error"]),
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            doc["instance"] = instance
        if self.extensions:
            doc.update(self.extensions)
        return doc

    def response(self, instance: str | None = None) -> Response:
        """Render as a `Response` (also used directly by pure ASGI middleware)."""
        return Response(
            orjson.dumps(self.body(instance)),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


def field_errors(errors: Sequence[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error dicts reduced to `{loc, msg, type}`: never the input, never a URL."""
    out: list[dict[str, Any]] = []
    for error in errors[:MAX_FIELD_ERRORS]:
        loc = [*prefix, *error.get("loc", ())]
        msg = str(error.get("msg", ""))[:MAX_MESSAGE_CHARS]
        out.append({"loc": loc, "msg": msg, "type": str(error.get("type", "value_error"))})
    return out


def validation_problem(errors: Sequence[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> ProblemError:
    """422 `validation-error` listing each field error; a lone error is also spelled out in `detail`
    (where and why), so a person reading only the detail knows what to fix."""
    listed = field_errors(errors, prefix)
    count = len(errors)
    detail = f"{count} field error{'s' if count != 1 else ''} in the request"
    if count == 1:
        where = ".".join(str(part) for part in listed[0]["loc"])
        detail = f"{detail}: {where[:MAX_MESSAGE_CHARS]}: {listed[0]['msg']}"
    return ProblemError(422, "validation-error", detail, extensions={"errors": listed})


def unauthorized(detail: str) -> ProblemError:
    """401 with the challenge RFC 6750 asks for."""
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", detail)


def item_not_found(item_id: str) -> ProblemError:
    """404 for an unknown item; the id is only echoed when it is short enough to be one."""
    shown = item_id if len(item_id) <= 64 else item_id[:64] + "..."
    return ProblemError(404, "item-not-found", f"no item with id {shown!r}")


def rate_limited(retry_after: int, detail: str | None = None) -> ProblemError:
    """429 with `Retry-After`; `detail` says which limit when it is not the generic one."""
    return ProblemError(
        429,
        "rate-limited",
        f"{detail or 'too many requests'}; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def unavailable(detail: str, retry_after: int | None = 1) -> ProblemError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return ProblemError(503, "unavailable", detail, headers=headers)


def payload_too_large(limit: int) -> ProblemError:
    return ProblemError(413, "payload-too-large", f"the request body exceeds {limit} bytes")


def unsupported_media_type() -> ProblemError:
    return ProblemError(415, "unsupported-media-type", "send the body as application/json (UTF-8)")


def internal_error_response(instance: str | None = None) -> Response:
    """The last-resort 500: a fixed body, never the exception's text or traceback."""
    return ProblemError(500, "internal-error", "an unexpected error occurred; it was logged").response(
        instance
    )


_HTTP_SLUGS = {
    404: ("not-found", "no route matches this path"),
    405: ("method-not-allowed", "this path does not accept that method"),
    413: ("payload-too-large", "the request body is too large"),
    415: ("unsupported-media-type", "unsupported media type"),
}


async def _problem_handler(request: Request, exc: Exception) -> Response:
    # Not logged: these are expected answers (a bidder outage is counted by metrics, and logged once
    # per failed call only for statuses that point at a bug upstream, in `clients.py`).
    assert isinstance(exc, ProblemError)
    return exc.response(request.scope["path"])


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc.errors()).response(request.scope["path"])


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request.app.router.routes, request.scope))
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        headers = {**(headers or {}), "Allow": allow}
    slug, detail = _HTTP_SLUGS.get(exc.status_code, ("http-error", str(exc.detail)[:MAX_MESSAGE_CHARS]))
    problem = ProblemError(exc.status_code, slug, detail, headers=headers)
    return problem.response(request.scope["path"])


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error a caller can cause to a problem+json answer."""
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
