"""Your own notices, across items: outbid, won, lost, extended, from the fan-out's `/ws/me`.

    async with watch_notices(token, "ws://127.0.0.1:8081") as notices:
        async for notice in notices:
            match notice:
                case Outbid(item_id=item_id, min_next_bid=minimum): ...
                case Won(item_id=item_id, final_price=price): ...
                case Lost(item_id=item_id): ...
                case AuctionExtended(item_id=item_id, ends_at=ends_at): ...

The token (a `bidder` or `admin` JWT) goes in the WebSocket subprotocol header (`bearer, <jwt>`), or with
`auth="message"` in the first message; never in the URL. Notices are live only: those published while
no connection is open are not replayed (read the item to catch up). The platform sends them at least
once, so the stream drops repeats (same kind, item and `seq`). On a dropped connection, a server restart
(1012) or "try again later" (1013) it reconnects by itself with backoff and full jitter. A refused token
(close 4401) ends the iteration with `NoticeAuthError`; other refusals with `LiveStreamError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from auction.live import LiveStreamError, ReconnectingStream

__all__ = [
    "AuctionExtended",
    "Lost",
    "Notice",
    "NoticeAuthError",
    "NoticeDecoder",
    "NoticeStream",
    "OtherNotice",
    "Outbid",
    "Won",
    "watch_notices",
]

DEFAULT_WS_URL = "ws://127.0.0.1:8081"
CLOSE_UNAUTHENTICATED = 4401
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_FATAL_CLOSE = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
_REMEMBERED = 1024  # notices remembered for dropping repeats


class NoticeAuthError(LiveStreamError):
    """The fan-out refused the token (close 4401): missing, bad, expired or too long-lived."""


@dataclass(frozen=True, slots=True)
class Outbid:
    """Another bidder took the lead on `item_id`; bid at least `min_next_bid` to lead again."""

    item_id: str
    seq: int
    current_price: int
    min_next_bid: int
    currency: str


@dataclass(frozen=True, slots=True)
class Won:
    item_id: str
    seq: int
    final_price: int | None


@dataclass(frozen=True, slots=True)
class Lost:
    """The auction closed and you are not the winner (`final_price` None when nothing was sold)."""

    item_id: str
    seq: int
    final_price: int | None


@dataclass(frozen=True, slots=True)
class AuctionExtended:
    """A late bid moved the end of an item you bid on (soft close)."""

    item_id: str
    seq: int
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class OtherNotice:
    """A notice of a kind this SDK does not know yet (a newer server), kept as sent."""

    type: str
    data: Mapping[str, Any]


Notice: TypeAlias = Outbid | Won | Lost | AuctionExtended | OtherNotice


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def notice_of(data: Mapping[str, Any]) -> Notice:
    """The typed notice of one frame's JSON object."""
    kind, item_id, seq = str(data.get("type")), str(data.get("item_id")), int(data.get("seq") or 0)
    if kind == "outbid":
        return Outbid(
            item_id, seq, int(data["current_price"]), int(data["min_next_bid"]), str(data.get("currency", ""))
        )
    if kind == "won":
        return Won(item_id, seq, _int_or_none(data.get("final_price")))
    if kind == "lost":
        return Lost(item_id, seq, _int_or_none(data.get("final_price")))
    if kind == "extended":
        return AuctionExtended(item_id, seq, datetime.fromisoformat(str(data["ends_at"])))
    return OtherNotice(kind, data)


class NoticeDecoder:
    """Frames in, notices out, repeats dropped; no I/O, so it is tested on its own.

    `bidder` is set by the server's `ready` frame; `error` keeps the last `error` frame's JSON;
    `repeats` counts the notices dropped as already yielded.
    """

    def __init__(self) -> None:
        self.bidder: str | None = None
        self.error: Mapping[str, Any] | None = None
        self.repeats = 0
        self._seen: set[tuple[str, str, int]] = set()
        self._order: deque[tuple[str, str, int]] = deque()

    def feed(self, frame: str | bytes) -> Notice | None:
        message = orjson.loads(frame)
        if not isinstance(message, dict):
            return None
        kind = message.get("type")
        if kind == "ready":
            self.bidder = str(message.get("bidder"))
            return None
        if kind == "error":
            self.error = message
            return None
        key = (str(kind), str(message.get("item_id")), int(message.get("seq") or 0))
        if key in self._seen:
            self.repeats += 1
            return None
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > _REMEMBERED:
            self._seen.discard(self._order.popleft())
        message.pop("server_time", None)
        return notice_of(message)


class NoticeStream(ReconnectingStream):
    """Async iterator over the token's notices; see the module docstring. Use `watch_notices`."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_WS_URL,
        *,
        auth: Literal["header", "message"] = "header",
        origin: str | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        max_attempts: int | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/ws/me"
        super().__init__(backoff_initial, backoff_max, max_attempts)
        self.decoder = NoticeDecoder()
        self._token = token
        self._auth = auth
        self._options: dict[str, Any] = {
            "origin": origin,
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "compression": None,
            "proxy": None,
        }
        if auth == "header":
            self._options["subprotocols"] = [Subprotocol("bearer"), Subprotocol(token)]
        self.ready = asyncio.Event()

    @property
    def bidder(self) -> str | None:
        """The bidder the server authenticated (None before the first `ready`)."""
        return self.decoder.bidder

    def __aiter__(self) -> AsyncIterator[Notice]:
        return self._notices()

    async def _notices(self) -> AsyncIterator[Notice]:
        failures = 0
        while not self._closed:
            try:
                async with connect(self.url, **self._options) as ws:
                    self._connection = ws
                    self.connects += 1
                    if self._auth == "message":
                        await ws.send(orjson.dumps({"type": "auth", "token": self._token}).decode())
                    async for frame in ws:
                        failures = 0
                        notice = self.decoder.feed(frame)
                        if self.decoder.bidder is not None:
                            self.ready.set()
                        if notice is not None:
                            yield notice
            except ConnectionClosed as exc:
                self._raise_if_final(exc)
            except InvalidStatus as exc:
                if exc.response.status_code not in _RETRYABLE_STATUS:
                    raise LiveStreamError(f"handshake refused: HTTP {exc.response.status_code}") from exc
            except (OSError, TimeoutError, InvalidHandshake):
                pass
            finally:
                self._connection = None
                self.ready.clear()
            if self.closed:
                return
            failures += 1
            if self._max_attempts is not None and failures >= self._max_attempts:
                raise LiveStreamError(f"gave up after {failures} attempts")
            await asyncio.sleep(self._delay(failures))

    def _raise_if_final(self, exc: ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        if code == CLOSE_UNAUTHENTICATED:
            raise NoticeAuthError(f"token refused: {reason}") from exc
        if code in _FATAL_CLOSE or (4000 <= code < 5000):
            detail = self.decoder.error or reason
            raise LiveStreamError(f"closed with {code}: {detail}") from exc


def watch_notices(token: str, base_url: str = DEFAULT_WS_URL, **options: Any) -> NoticeStream:
    """A `NoticeStream` of the token's bidder from the fan-out at `base_url`; see `NoticeStream`."""
    return NoticeStream(token, base_url, **options)
