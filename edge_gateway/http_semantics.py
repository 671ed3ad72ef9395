"""HTTP method semantics and the headers every answer carries, in one raw ASGI layer (the outermost).

- `HEAD` is served as `GET` (RFC 9110 §9.3.2: a general-purpose server must support both): the app sees a
  copy of the scope with `GET`, so routes, validation and metrics need no HEAD variant, while uvicorn,
  which keeps its own scope with `HEAD`, sends the GET's headers (Content-Length included) and drops the
  body.
- Every answer, errors and `/metrics` included, gets `X-Content-Type-Options: nosniff` (a browser never
  guesses an HTML type for a JSON or problem body) and `Cache-Control: no-store` (prices, bids and
  tokens' answers must not be served from a shared or browser cache).
- `allowed_methods` lists what a path supports, for the `Allow` header of 405 and OPTIONS answers.

A raw layer rather than `BaseHTTPMiddleware` (which runs the app in a separate task and costs tens of
microseconds per request): this one costs one wrapped `send` per request. The answers the HTTP server
writes itself (`http_protocol`) carry the same headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Match

if TYPE_CHECKING:
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)
# The order `Allow` lists methods in (RFC 9110 sets none; a fixed one gives stable answers).
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class HttpSemanticsMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route accepts for `scope`'s path, plus HEAD with GET and always OPTIONS.

    Found by asking the routes to match the path with each method in turn, through `matches()` only,
    because FastAPI nests included routers (their routes are not a flat list with `methods`).
    """
    allowed = {"OPTIONS"}
    for method in _PROBED_METHODS:
        probe = {
            "type": "http",
            "method": method,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
        }
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.add(method)
    if "GET" in allowed:
        allowed.add("HEAD")
    return [method for method in _METHOD_ORDER if method in allowed]
