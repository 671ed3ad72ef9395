"""One `/ws/me` connection: authenticate the bidder, subscribe their notices, deliver until close or expiry.

The token comes from the handshake (`Sec-WebSocket-Protocol: bearer, <jwt>`) or, failing that, the
first message, `{"type": "auth", "token": "<jwt>"}`, within `auth_timeout_seconds`. It is checked by the
edge's rules (`auction_common.jwt_verify`). Anything wrong (no token in time, not JSON, a bad, expired
or over-long token) gets `{"type": "error", "code": "unauthorized", ...}` and close 4401 with the reason;
nothing else happens. Once subscribed the client gets `{"type": "ready", "bidder"}`, then its notices.
When the token expires the connection is closed the same way (4401, "the token has expired"), unless the
client sent a fresh token of the same bidder with another `auth` message before; other messages are
ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import orjson
from websockets.asyncio.server import broadcast
from websockets.exceptions import ConnectionClosed

from auction_common.jwt_verify import TokenRejected
from fanout.errors import FanoutError, Unauthenticated, closing_for
from fanout.frames import error_frame, ready_frame

if TYPE_CHECKING:
    from auction_common.jwt_verify import Bearer, HS256Verifier
    from fanout.connection import ViewerConnection
    from fanout.metrics import FanoutMetrics
    from fanout.notices import NoticeHub


class NoticeSessions:
    """Serves `/ws/me` connections with the process's hub; `serve` is their websockets handler."""

    def __init__(
        self, verifier: HS256Verifier, hub: NoticeHub, metrics: FanoutMetrics, auth_timeout: float
    ) -> None:
        self._verifier = verifier
        self._hub = hub
        self._metrics = metrics
        self._auth_timeout = auth_timeout

    async def serve(self, viewer: ViewerConnection) -> None:
        # The gate took the token from the headers; an idle connection should cost as little as it can.
        if viewer.request is not None:
            viewer.request.headers.clear()
        if viewer.response is not None:
            viewer.response.headers.clear()
        self._metrics.notice_viewers.inc()
        try:
            await self._serve(viewer)
        except ConnectionClosed:
            pass
        finally:
            self._metrics.notice_viewers.dec()

    async def _serve(self, viewer: ViewerConnection) -> None:
        try:
            bearer = await self._authenticate(viewer)
            feed = await self._hub.acquire(bearer.sub)
        except FanoutError as exc:
            await refuse(viewer, exc, self._metrics)
            return
        try:
            # No await between the two: no notice can slip in before `ready`, none is lost after it.
            broadcast([viewer], ready_frame(bearer.sub), text=True)
            feed.add(viewer)
            await self._until_closed_or_expired(viewer, bearer)
        finally:
            feed.remove(viewer)
            await self._hub.release(feed)

    async def _authenticate(self, viewer: ViewerConnection) -> Bearer:
        token = viewer.bearer_token
        if token is None:
            try:
                async with asyncio.timeout(self._auth_timeout):
                    message = await viewer.recv()
            except TimeoutError:
                raise Unauthenticated(
                    f'no token within {self._auth_timeout:g} s: send {{"type": "auth", "token": ...}} first'
                ) from None
            token = auth_token(message)
        return self._verify(token)

    def _verify(self, token: str) -> Bearer:
        try:
            return self._verifier.verify(token)
        except TokenRejected as exc:
            raise Unauthenticated(str(exc)) from None

    async def _until_closed_or_expired(self, viewer: ViewerConnection, bearer: Bearer) -> None:
        """Read (and mostly ignore) the client's messages until it leaves or its token expires."""
        expires = bearer.exp
        while True:
            try:
                async with asyncio.timeout(max(0.0, expires - time.time())):
                    message = await viewer.recv()
            except TimeoutError:
                await refuse(viewer, Unauthenticated("the token has expired"), self._metrics)
                return
            renewal = _renewal(message)
            if renewal is None:
                continue
            try:
                fresh = self._verify(renewal)
                if fresh.sub != bearer.sub:
                    raise Unauthenticated("a renewed token must name the same bidder")
            except Unauthenticated as exc:
                await refuse(viewer, exc, self._metrics)
                return
            expires = max(expires, fresh.exp)


def auth_token(message: str | bytes) -> str:
    """The token of the first message `{"type": "auth", "token": "<jwt>"}`; `Unauthenticated` otherwise."""
    token = _renewal(message)
    if token is None:
        raise Unauthenticated('the first message must be {"type": "auth", "token": "<jwt>"}')
    return token


def _renewal(message: str | bytes) -> str | None:
    try:
        doc = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("type") == "auth" and isinstance(doc.get("token"), str):
        return str(doc["token"])
    return None


async def refuse(viewer: ViewerConnection, exc: FanoutError, metrics: FanoutMetrics) -> None:
    """The error message, then the close code and reason `closing_for` gives."""
    closing = closing_for(exc)
    metrics.closed.labels(closing.error_code or "closed").inc()
    with contextlib.suppress(ConnectionClosed):
        if closing.error_code is not None:
            await viewer.send(error_frame(closing.error_code, str(exc)), text=True)
        await viewer.close(closing.code, closing.reason)
