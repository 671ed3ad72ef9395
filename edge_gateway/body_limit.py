"""Reject request bodies over `max_body_bytes` before anything parses them (413 problem+json).

A pure ASGI middleware, because it must act before FastAPI reads the body. A declared `Content-Length`
over the limit is answered at once, without buffering a byte. The connection is deliberately *not*
closed: most clients write the whole body before reading the answer, and closing with unread data makes
the kernel reset the connection, so they would see a reset instead of the 413. uvicorn discards the rest
of a body whose response is complete (the same "lingering" idea as nginx's). A body without a length
(chunked) is counted while it streams and the read fails as soon as it passes the limit. A declared
length within the limit needs no counting: the HTTP server never delivers more than the declared
length, so the hot path pays only one scan of the header list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_gateway.problems import payload_too_large

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared > limit:
                    await payload_too_large(limit).response(scope["path"])(scope, receive, send)
                    return
                if declared >= 0:
                    await self.app(scope, receive, send)
                    return
                break
        total = 0

        async def limited_receive() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise payload_too_large(limit)
            return message

        await self.app(scope, limited_receive, send)
