"""The chaos war's load: SDK bidders on a rolling set of short lots, SDK viewers on every lot.

Each intended bid gets one Idempotency-Key. The SDK retries it (same key) on 503s and lost connections;
when its retries run out, the bidder counts a failed call and sends the same key and amount again, as a
careful client would, until an answer says what happened to that bid. So every key ends with a known
outcome, and a second bid for one key shows up as two different bid ids for it. `WarLog` keeps what the
clients saw: every accepted bid, every 201's arrival time (for the write path's unavailability) and every
failed call; `ViewerLog` what each viewer was shown. The checks compare them with the platform's records.

Lots are created as the war goes, a few open at once, each ending `lifetime` seconds after its creation,
so auctions close all through the chaos, also while a component is down.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from auction.errors import AuctionClosed, AuctionError, BidTooLow, RateLimited, ServerError, TransportError
from auction.live import BidPlaced, Closed, Extended, ItemCreated, OtherEvent, Reset, Snapshot, watch_item
from auction.rest import AsyncAuctionClient
from auction.retry import RetryPolicy
from auction_bench.chaos_records import Event
from devstack.tokens import mint_token

STARTING_PRICE = 100
INCREMENT = 10
# What a call that failed after the SDK's retries may have done is unknown until the same key is sent
# again; these are the failures after which that is worth trying.
UNANSWERED = (TransportError, ServerError, RateLimited)


@dataclass(frozen=True)
class WarSize:
    """How big the war is: bidders, lots open at once, their lifetime, viewers per lot, pacing."""

    bidders: int
    open_lots: int
    lifetime: float
    viewers_per_lot: int
    pause: float = 0.2
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=8, initial_wait=0.1, max_wait=2.0)
    )
    resolve_within: float = 120.0


@dataclass(frozen=True)
class Accepted:
    """A 201 a client saw: which bid the platform says it placed."""

    key: str
    item_id: str
    bid_id: str
    seq: int
    bidder: str
    amount: int
    answered_at: float  # time.monotonic()


@dataclass
class WarLog:
    """Everything the clients saw."""

    accepted: dict[str, Accepted] = field(default_factory=dict)  # by bid id (the first answer naming it)
    bid_ids_by_key: dict[str, set[str]] = field(default_factory=dict)
    successes: list[float] = field(default_factory=list)  # when each 201 arrived (monotonic)
    failed_calls: list[tuple[float, str]] = field(default_factory=list)  # (when, why) after the retries
    unresolved: set[str] = field(default_factory=set)  # keys whose outcome is still unknown
    unexpected: list[str] = field(default_factory=list)  # answers no bid of this war should get
    create_failures: int = 0
    requests: int = 0  # calls to `place_bid` (each may be several sends)
    resends: list[float] = field(default_factory=list)  # when a key already sent was sent again
    _sent: set[str] = field(default_factory=set)

    def sending(self, key: str) -> None:
        """One HTTP send of a bid (the SDK's retries and ours included)."""
        if key in self._sent:
            self.resends.append(time.monotonic())
        self._sent.add(key)

    def record(self, key: str, accepted: Accepted) -> None:
        self.bid_ids_by_key.setdefault(key, set()).add(accepted.bid_id)
        self.accepted.setdefault(accepted.bid_id, accepted)
        self.successes.append(accepted.answered_at)

    def duplicate_keys(self) -> dict[str, set[str]]:
        """Keys answered with more than one bid id: one intended bid placed twice."""
        return {key: ids for key, ids in self.bid_ids_by_key.items() if len(ids) > 1}


@dataclass
class ViewerLog:
    """What one `watch_item` viewer was shown."""

    item_id: str
    snapshot_seq: int | None = None
    events: list[Event] = field(default_factory=list)  # in the order shown
    resets: int = 0
    connects: int = 0
    finished: bool = False
    error: str | None = None


@dataclass
class Lot:
    item_id: str
    ends_at: float  # monotonic, as far as this client's clock tells
    viewers: list[ViewerLog] = field(default_factory=list)


async def watch(fanout_url: str, log: ViewerLog) -> None:
    """Follow one item until its close; record every event shown."""
    stream = watch_item(fanout_url, log.item_id, backoff_initial=0.05, backoff_max=1.0)
    try:
        async for event in stream:
            if isinstance(event, Snapshot) and log.snapshot_seq is None:
                log.snapshot_seq = event.seq
            elif isinstance(event, Reset):
                log.resets += 1
            elif isinstance(event, BidPlaced):
                log.events.append(Event(event.seq, "bid", event.bid_id, event.bidder, event.amount))
            elif isinstance(event, Closed):
                winner, price = event.winner or "", -1 if event.final_price is None else event.final_price
                log.events.append(Event(event.seq, "closed", "", winner, price))
            elif isinstance(event, Extended):
                log.events.append(Event(event.seq, "extended", "", "", -1))
            elif isinstance(event, OtherEvent | ItemCreated):
                kind = event.type if isinstance(event, OtherEvent) else "created"
                log.events.append(Event(event.seq, kind, "", "", -1))
        log.finished = stream.finished
    except AuctionError as exc:
        log.error = repr(exc)
    finally:
        log.connects = stream.connects
        await stream.aclose()


class _Counting(httpx.AsyncBaseTransport):
    """The HTTP transport under the SDK, noting every send of each Idempotency-Key (retries included)."""

    def __init__(self, log: WarLog) -> None:
        self._log = log
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if key:
            self._log.sending(key)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class ChaosWar:
    """The bidders, the lot keeper and the viewers; `start()`, then `finish()` to let every lot close."""

    def __init__(self, edge_url: str, fanout_url: str, secret: str, size: WarSize) -> None:
        self.edge_url = edge_url
        self.fanout_url = fanout_url
        self.secret = secret
        self.size = size
        self.log = WarLog()
        self.lots: list[Lot] = []
        self.viewers: list[ViewerLog] = []
        self._creating = True
        self._tasks: list[asyncio.Task[None]] = []
        self._viewer_tasks: list[asyncio.Task[None]] = []

    def item_ids(self) -> list[str]:
        return [lot.item_id for lot in self.lots]

    async def start(self) -> None:
        """Open the first lots (ends spread over one lifetime), then bid on them and keep them coming."""
        admin = mint_token(self.secret, "chaos-admin", "admin", ttl_seconds=7200)
        self._admin = AsyncAuctionClient(self.edge_url, admin, timeout=5.0)
        for index in range(self.size.open_lots):
            lifetime = self.size.lifetime * (index + 1) / self.size.open_lots
            while not await self._open_lot(lifetime):  # noqa: ASYNC110 - retrying a call, not polling
                await asyncio.sleep(0.3)
        self._tasks.append(asyncio.create_task(self._keep_lots()))
        self._tasks += [asyncio.create_task(self._bidder(n)) for n in range(self.size.bidders)]

    async def finish(self, within: float) -> None:
        """Stop opening lots; wait until every lot is over for the bidders and every viewer saw its close."""
        self._creating = False
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=within)
            await asyncio.wait_for(asyncio.gather(*self._viewer_tasks), timeout=within)
        except TimeoutError:
            for task in [*self._tasks, *self._viewer_tasks]:
                task.cancel()
            await asyncio.gather(*self._tasks, *self._viewer_tasks, return_exceptions=True)
        finally:
            await self._admin.aclose()

    async def _keep_lots(self) -> None:
        """Keep `open_lots` lots with at least a third of their lifetime left."""
        while self._creating:
            soon = time.monotonic() + self.size.lifetime / 3
            wanted = sum(lot.ends_at > soon for lot in self.lots) < self.size.open_lots
            if wanted and not await self._open_lot(self.size.lifetime):
                await asyncio.sleep(0.3)
                continue
            await asyncio.sleep(0.1)

    async def _open_lot(self, lifetime: float) -> bool:
        """Create one lot and its viewers; False when the platform did not answer (the create is not
        retried: a repeat would make a second item, and one whose answer was lost is simply not used)."""
        ends_at = datetime.now(UTC) + timedelta(seconds=lifetime)
        try:
            item = await self._admin.create_item(
                "Chaos lot", currency="USD", starting_price=STARTING_PRICE, min_increment=INCREMENT,
                ends_at=ends_at,
            )  # fmt: skip
        except AuctionError:
            self.log.create_failures += 1
            return False
        lot = Lot(item.id, time.monotonic() + lifetime)
        for _ in range(self.size.viewers_per_lot):
            viewer = ViewerLog(item.id)
            lot.viewers.append(viewer)
            self.viewers.append(viewer)
            self._viewer_tasks.append(asyncio.create_task(watch(self.fanout_url, viewer)))
        self.lots.append(lot)
        return True

    def _pick(self, index: int, over: set[str]) -> Lot | None:
        now = time.monotonic()
        # A little past its end on this clock: the platform's clock decides, and says `auction-closed`.
        open_lots = [lot for lot in self.lots if lot.item_id not in over and lot.ends_at > now - 1.0]
        return open_lots[index % len(open_lots)] if open_lots else None

    async def _bidder(self, index: int) -> None:
        name = f"chaos{index}"
        rng = random.Random(name)
        token = mint_token(self.secret, name, "bidder", ttl_seconds=7200)
        over: set[str] = set()
        next_amount: dict[str, int] = {}
        transport = _Counting(self.log)
        client = AsyncAuctionClient(
            self.edge_url, token, timeout=5.0, retry=self.size.retry, transport=transport
        )
        async with client:
            while True:
                lot = self._pick(index, over)
                if lot is None:
                    if not self._creating:
                        return
                    await asyncio.sleep(0.1)
                    continue
                amount = next_amount.get(lot.item_id, STARTING_PRICE)
                following = await self._place(client, name, lot.item_id, amount)
                if following is None:
                    over.add(lot.item_id)
                else:
                    next_amount[lot.item_id] = following
                await asyncio.sleep(rng.uniform(0.5, 1.5) * self.size.pause)

    async def _place(self, client: AsyncAuctionClient, name: str, item_id: str, amount: int) -> int | None:
        """One intended bid, sent until its outcome is known; the next amount to try, None once closed."""
        key = uuid.uuid4().hex
        give_up = time.monotonic() + self.size.resolve_within
        self.log.unresolved.add(key)
        while True:
            self.log.requests += 1
            try:
                result = await client.place_bid(item_id, amount, idempotency_key=key)
            except BidTooLow as exc:
                self.log.unresolved.discard(key)
                return exc.min_next_bid
            except AuctionClosed:
                self.log.unresolved.discard(key)
                return None
            except UNANSWERED as exc:
                self.log.failed_calls.append((time.monotonic(), type(exc).__name__))
                if time.monotonic() > give_up:
                    return None  # stays unresolved: the checks say so
                await asyncio.sleep(0.2)
                continue
            except AuctionError as exc:
                self.log.unresolved.discard(key)
                self.log.unexpected.append(f"{name} {item_id} {amount}: {exc!r}")
                return None
            self.log.unresolved.discard(key)
            accepted = Accepted(
                key, item_id, result.bid_id, result.seq, name, result.amount, time.monotonic()
            )
            self.log.record(key, accepted)
            return result.item.min_next_bid
