"""Watch an item live: an async iterator over its events that survives disconnects.

    async with watch_item("ws://127.0.0.1:8081", item_id) as stream:
        async for event in stream:
            match event:
                case Snapshot(item=item): ...
                case BidPlaced(amount=amount, bidder=bidder): ...
                case Extended(ends_at=ends_at): ...
                case Closed(outcome=outcome, winner=winner, final_price=price): ...

The first event is a `Snapshot` (unless `since` is given), then every later event of the item in `seq`
order. On a dropped connection, a server restart (1012) or a "try again later" (1013) the stream
reconnects by itself, with exponential backoff and full jitter, and resumes with `since` = the last
`seq` it yielded, so nothing is missed and nothing is yielded twice (duplicates are dropped by `seq`).
If the server answers a resume with `reset` (it no longer holds the missed events), the stream yields
`Reset` and then a fresh `Snapshot`. A jump in `seq` is treated as a broken connection: the stream
reconnects with `since` and the server fills the hole.

The auction's close ends the stream: after the `Closed` event (the item's last) the iteration stops
cleanly, without reconnecting; so does a `Snapshot` of an item whose result is already recorded.

Every frame from the fan-out carries the server's clock (`server_time`): `ItemStream.server_offset` is
the latest estimate of server clock minus local clock, in seconds, and `ItemStream.server_now()` the
local time corrected by it, so a countdown to `ends_at` follows the platform's clock (the one that
decides) rather than the viewer's. The estimate is taken when a frame arrives, so it runs behind the
server by the frame's one-way delay (usually milliseconds).

Errors that retrying cannot fix end the iteration: `LiveItemNotFound` (close 4404) and `LiveStreamError`
(refused handshake such as a disallowed Origin, a policy close, or `max_attempts` exhausted).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias, cast
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from auction.errors import AuctionError
from auction.models import Item

__all__ = [
    "BidPlaced",
    "Closed",
    "Extended",
    "ItemCreated",
    "ItemEvent",
    "ItemStream",
    "LiveEvent",
    "LiveItemNotFound",
    "LiveStreamError",
    "OtherEvent",
    "Outcome",
    "Reset",
    "Snapshot",
    "StreamDecoder",
    "watch_item",
]

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_FATAL_CLOSE = frozenset({1002, 1003, 1007, 1008, 1009, 1010})
CLOSE_NOT_FOUND = 4404


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The item as of `seq`; the events that follow have greater `seq`s."""

    item: Item
    seq: int


@dataclass(frozen=True, slots=True)
class Reset:
    """The server no longer holds the events since the last one yielded; a new `Snapshot` follows."""


@dataclass(frozen=True, slots=True)
class BidPlaced:
    item_id: str
    seq: int
    bid_id: str
    bidder: str
    amount: int
    placed_at: datetime
    current_price: int
    min_next_bid: int
    # Placed by the platform for a bidder's maximum (a proxy bid); the maximum itself is never sent.
    proxy: bool = False


@dataclass(frozen=True, slots=True)
class ItemCreated:
    item_id: str
    seq: int
    title: str
    description: str
    currency: str
    starting_price: int
    min_increment: int
    starts_at: datetime
    ends_at: datetime
    created_at: datetime


Outcome: TypeAlias = Literal["sold", "no_sale"]
OUTCOMES: frozenset[str] = frozenset({"sold", "no_sale"})


@dataclass(frozen=True, slots=True)
class Extended:
    """A late bid moved the end (soft close): `ends_at` is the new effective end.

    Its `seq` follows the bid that caused it.
    """

    item_id: str
    seq: int
    ends_at: datetime
    previous_ends_at: datetime

    @property
    def extension(self) -> timedelta:
        """How far the end moved."""
        return self.ends_at - self.previous_ends_at


@dataclass(frozen=True, slots=True)
class Closed:
    """The auction is over and its result recorded; the item's last event (the stream ends after it).

    `winner` and `final_price` are None when `outcome` is `"no_sale"` (no bid, or the reserve not met).
    """

    item_id: str
    seq: int
    outcome: Outcome
    winner: str | None
    final_price: int | None
    bid_count: int
    closed_at: datetime

    @property
    def sold(self) -> bool:
        return self.outcome == "sold"


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """An event the SDK cannot type: a kind this version does not model, or a known kind whose fields
    do not match its model. All its fields except `type`, `item_id`, `seq` (and `server_time`)."""

    type: str
    item_id: str
    seq: int
    fields: Mapping[str, Any]


ItemEvent: TypeAlias = BidPlaced | ItemCreated | Extended | Closed | OtherEvent
LiveEvent: TypeAlias = Snapshot | Reset | ItemEvent


class LiveStreamError(AuctionError):
    """The stream cannot go on: the server refused it for a reason retrying will not fix."""


class LiveItemNotFound(LiveStreamError):
    """The item does not exist (close code 4404)."""


class _Gap(Exception):
    """A `seq` jump: reconnect with `since` so the server fills it."""


_ENVELOPE = frozenset({"type", "item_id", "seq", "server_time"})
CLOSED_KIND = "closed"


def _event(data: Mapping[str, Any]) -> ItemEvent:
    """The typed event; one whose fields do not fit its kind's model is kept as an `OtherEvent`."""
    try:
        return _typed_event(data)
    except (KeyError, TypeError, ValueError):
        fields = {k: v for k, v in data.items() if k not in _ENVELOPE}
        return OtherEvent(
            type=str(data["type"]), item_id=data["item_id"], seq=int(data["seq"]), fields=fields
        )


def _typed_event(data: Mapping[str, Any]) -> ItemEvent:
    kind = data["type"]
    if kind == "bid":
        return BidPlaced(
            item_id=data["item_id"],
            seq=data["seq"],
            bid_id=data["bid_id"],
            bidder=data["bidder"],
            amount=data["amount"],
            placed_at=_time(data["placed_at"]),
            current_price=data["current_price"],
            min_next_bid=data["min_next_bid"],
            proxy=data.get("proxy", False) is True,
        )
    if kind == "created":
        return ItemCreated(
            item_id=data["item_id"],
            seq=data["seq"],
            title=data["title"],
            description=data["description"],
            currency=data["currency"],
            starting_price=data["starting_price"],
            min_increment=data["min_increment"],
            starts_at=_time(data["starts_at"]),
            ends_at=_time(data["ends_at"]),
            created_at=_time(data["created_at"]),
        )
    if kind == "extended":
        return Extended(
            item_id=data["item_id"],
            seq=data["seq"],
            ends_at=_time(data["ends_at"]),
            previous_ends_at=_time(data["previous_ends_at"]),
        )
    if kind == CLOSED_KIND:
        outcome = data["outcome"]
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        return Closed(
            item_id=data["item_id"],
            seq=data["seq"],
            outcome=cast("Outcome", outcome),
            winner=data["winner"],
            final_price=data["final_price"],
            bid_count=data["bid_count"],
            closed_at=_time(data["closed_at"]),
        )
    raise ValueError(f"unmodelled kind {kind!r}")


class StreamDecoder:
    """Frames in, events out, with the stream's bookkeeping; no I/O, so it is tested on its own.

    `last_seq` is the `seq` of the last event (or snapshot) yielded: the `since` of the next resume.
    `finished` turns true once the auction's close was yielded (a `closed` event, or a snapshot of an
    item whose result is recorded): nothing follows it, the stream stops there.
    `server_offset` is the latest estimate of the server's clock minus the local one, in seconds, from
    the `server_time` of the last frame that had one (None before the first); `server_time` is that value.
    """

    def __init__(self, since: int | None = None) -> None:
        self.last_seq = since
        self.duplicates = 0
        self.gaps = 0
        self.error: Mapping[str, Any] | None = None
        self.finished = False
        self.server_time: datetime | None = None
        self.server_offset: float | None = None
        self._after_reset = False

    def feed(self, frame: str | bytes, received_at: float | None = None) -> Iterator[LiveEvent]:
        """The events of one frame; raises `_Gap` at a `seq` jump (what came before it is yielded).

        `received_at` is when the frame arrived (`time.time()`, the default) for the clock offset.
        """
        received = time.time() if received_at is None else received_at
        message = orjson.loads(frame)
        self._observe_clock(message.get("server_time"), received)
        kind = message.get("type")
        if kind == "batch":
            for data in message["events"]:
                yield from self._item_event(data)
        elif kind == "snapshot":
            seq = int(message["seq"])
            if self.last_seq is not None and seq < self.last_seq and not self._after_reset:
                return  # an older view than what was already yielded: skip it
            self._after_reset = False
            self.last_seq = seq
            raw_item = message["item"]
            if isinstance(raw_item, Mapping) and raw_item.get("result") is not None:
                self.finished = True  # closed before we came: no event will follow
            yield Snapshot(Item.model_validate(raw_item), seq)
        elif kind == "reset":
            self._after_reset = True
            yield Reset()
        elif kind == "error":
            self.error = message
        else:
            yield from self._item_event(message)

    def _item_event(self, data: Mapping[str, Any]) -> Iterator[ItemEvent]:
        seq = int(data["seq"])
        last = self.last_seq
        if last is not None:
            if seq <= last:
                self.duplicates += 1
                return
            if seq != last + 1:
                self.gaps += 1
                raise _Gap(f"expected seq {last + 1}, got {seq}")
        self.last_seq = seq
        if data.get("type") == CLOSED_KIND:
            self.finished = True  # the item's last event, typed or not
        yield _event(data)

    def _observe_clock(self, server_time: object, received: float) -> None:
        if not isinstance(server_time, str):
            return  # an older server: keep the last estimate
        try:
            parsed = _time(server_time)
        except ValueError:
            return
        if parsed.tzinfo is None:
            return
        self.server_time = parsed
        self.server_offset = parsed.timestamp() - received

    def server_now(self, local: datetime | None = None) -> datetime:
        """`local` (default: now) on the server's clock, as far as the latest offset tells (UTC)."""
        now = datetime.now(UTC) if local is None else local
        return now + timedelta(seconds=self.server_offset or 0.0)


class ReconnectingStream:
    """What every fan-out stream of the SDK shares: its connection, reconnect backoff (full jitter),
    `aclose` and the async context manager. Subclasses read frames and decide what is final."""

    def __init__(self, backoff_initial: float, backoff_max: float, max_attempts: int | None) -> None:
        self.connects = 0
        self._backoff = (backoff_initial, backoff_max)
        self._max_attempts = max_attempts
        self._connection: ClientConnection | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `aclose` was called."""
        return self._closed

    def _delay(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(failures-1))]."""
        initial, cap = self._backoff
        return random.uniform(0, min(cap, initial * 2 ** (failures - 1)))

    async def aclose(self) -> None:
        """Stop: the iteration ends after the frame being handled."""
        self._closed = True
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class ItemStream(ReconnectingStream):
    """Async iterator over one item's events; see the module docstring. Use `watch_item` to make one."""

    def __init__(
        self,
        base_url: str,
        item_id: str,
        *,
        since: int | None = None,
        origin: str | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        max_attempts: int | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/ws/items/{quote(item_id, safe='')}"
        self.item_id = item_id
        super().__init__(backoff_initial, backoff_max, max_attempts)
        self.decoder = StreamDecoder(since)
        self._origin = origin
        self._options: dict[str, Any] = {
            "open_timeout": open_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "compression": None,
            "proxy": None,
            "max_size": 16 * 1024 * 1024,
            **(connect_options or {}),
        }

    @property
    def finished(self) -> bool:
        """True once the auction's close was yielded: the iteration is over for good."""
        return self.decoder.finished

    @property
    def last_seq(self) -> int | None:
        return self.decoder.last_seq

    @property
    def server_offset(self) -> float | None:
        """Server clock minus local clock in seconds, from the latest frame; None before the first."""
        return self.decoder.server_offset

    def server_now(self) -> datetime:
        """Now on the server's clock (UTC): the local clock corrected by `server_offset`."""
        return self.decoder.server_now()

    def _resume_url(self) -> str:
        since = self.decoder.last_seq
        return self.url if since is None else f"{self.url}?since={since}"

    def __aiter__(self) -> AsyncIterator[LiveEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[LiveEvent]:
        failures = 0
        while not self._closed and not self._over():
            try:
                async with connect(self._resume_url(), origin=self._origin, **self._options) as ws:  # type: ignore[arg-type]
                    self._connection = ws
                    self.connects += 1
                    async for frame in ws:
                        failures = 0
                        for event in self.decoder.feed(frame, time.time()):
                            yield event
                            if self._over():
                                return  # the auction is over: close cleanly, no reconnect
            except _Gap:
                continue  # reconnect at once with `since`: the server fills the hole
            except ConnectionClosed as exc:
                self._raise_if_final(exc)
            except InvalidStatus as exc:
                if exc.response.status_code not in _RETRYABLE_STATUS:
                    raise LiveStreamError(f"handshake refused: HTTP {exc.response.status_code}") from exc
            except (OSError, TimeoutError, InvalidHandshake):
                pass
            finally:
                self._connection = None
            if self.closed:
                return
            failures += 1
            if self._max_attempts is not None and failures >= self._max_attempts:
                raise LiveStreamError(f"gave up after {failures} attempts")
            await asyncio.sleep(self._delay(failures))

    def _over(self) -> bool:
        return self.decoder.finished

    def _raise_if_final(self, exc: ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        if code == CLOSE_NOT_FOUND:
            raise LiveItemNotFound(self.item_id) from exc
        if code in _FATAL_CLOSE or (4000 <= code < 5000):
            detail = self.decoder.error or (exc.rcvd.reason if exc.rcvd is not None else "")
            raise LiveStreamError(f"closed with {code}: {detail}") from exc


def watch_item(base_url: str, item_id: str, *, since: int | None = None, **options: Any) -> ItemStream:
    """An `ItemStream` of `item_id` from the fan-out at `base_url` (`ws://host:8081`); see `ItemStream`."""
    return ItemStream(base_url, item_id, since=since, **options)
