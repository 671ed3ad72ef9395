"""The WATCH/MULTI/EXEC strategy: the same outcomes as `place_bid.lua` and `buy_now.lua`, reply for reply.

Each bid is its own optimistic transaction with retries: read the item under WATCH, decide with the
reference model (`auction_contract.bid_rules`, the rules the Lua step spells out), queue the writes the
decision needs. It exists to be measured against Lua and counts its conflicts (single server only, see
settings). Using the model itself, rather than a third copy of the rules, is what keeps the two
strategies and the model in step; the property test holds the Lua step to both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import orjson
import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import WatchError

from auction_contract.bid_rules import Book, buy_now, parse_ladder, place
from auction_contract.events import Outcome, bid_event, closed_event, extended_event, max_raised_entry
from auction_contract.redis_layout import EVENT_FIELD, LEADER_MAX_FIELD, PREVIOUS_LEADER_FIELD, ItemField
from auction_contract.replies import Reply, ReplyCode, accepted_reply, too_low_reply
from auction_contract.rules import ItemStatus, extended_end, soft_close_of, status_at
from core_bidder.errors import StoreUnavailable
from core_bidder.writers import BUY_SIGNATURE, BidInput, WriterBase, bid_signature, replay_of, text_of

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from auction_common.redis_client import AnyRedis
    from auction_contract.redis_layout import ItemKeys
    from core_bidder.settings import BidderSettings
    from core_bidder.writers import Group

__all__ = ["WATCH_CONFLICTS", "WatchBidWriter"]
# What the WATCH writer reads under WATCH, in the order it unpacks them.
_DECISION_FIELDS = [
    ItemField.STARTING_PRICE.value, ItemField.MIN_INCREMENT.value, ItemField.STARTS_MS.value,
    ItemField.ENDS_MS.value, ItemField.PRICE.value, ItemField.BID_COUNT.value, ItemField.SEQ.value,
    ItemField.CURRENCY.value, ItemField.SOFT_WINDOW_MS.value, ItemField.SOFT_EXTENSION_MS.value,
    ItemField.SOFT_MAX_ENDS_MS.value, ItemField.HIGHEST_BIDDER.value, ItemField.LEADER_MAX.value,
    ItemField.INCREMENTS.value, ItemField.RESERVE_PRICE.value, ItemField.BUY_NOW_PRICE.value,
    ItemField.OUTCOME.value,
]  # fmt: skip
_NOT_FOUND: Reply = [ReplyCode.NOT_FOUND.value]

WATCH_CONFLICTS = Counter(
    "bidder_watch_conflicts_total", "WATCH transactions aborted by a concurrent write and retried"
)
log = structlog.get_logger(__name__)
_LOGGED_ATTEMPTS = frozenset({10, 100, 1000})  # one log line per bid at each of these conflict counts


class _Item:
    """The fields read under WATCH, decoded once."""

    def __init__(self, fields: list[bytes | str | None]) -> None:
        values = [text_of(x) if x is not None else "" for x in fields]
        sp, inc, st, et, price, bc, seq, cur, scw, scx, scm, hb, lm, incs, rp, bn, out = values
        self.starts, self.ends, self.seq, self.currency = int(st), int(et), int(seq), cur
        self.rule = soft_close_of(scw, scx, scm)
        self.leader = hb
        self.has_max = bool(lm)
        self.closed = bool(out)
        self.book = Book(
            int(sp), parse_ladder(incs, int(inc)), int(rp) if rp else None, int(bn) if bn else None,
            int(price) if price else None, hb or None, int(lm) if lm else None, int(bc),
        )  # fmt: skip


class WatchBidWriter(WriterBase):
    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        if not isinstance(redis, Redis):
            raise TypeError("the WATCH strategy needs a single Redis server (see BidderSettings)")
        super().__init__(redis, settings)
        self._server = redis
        self._max_attempts = settings.watch_max_attempts
        self.conflicts = 0

    async def place_groups(self, groups: Sequence[Group]) -> list[list[Reply] | Exception]:
        """Every bid its own optimistic transaction; one item's bids in order, items at once."""

        async def group(keys: ItemKeys, bids: Sequence[BidInput]) -> list[Reply]:
            return [await self.place_bid(keys, bid) for bid in bids]

        outcomes = await asyncio.gather(*(group(keys, bids) for keys, bids in groups), return_exceptions=True)
        results: list[list[Reply] | Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not an item's failure
            results.append(outcome)
        if self._wait is not None:  # one fence and WAIT after every EXEC of the batch
            return await self._waited(results)
        return results

    async def place_bid(self, keys: ItemKeys, bid: BidInput) -> Reply:
        idem_key = keys.idempotency(bid.bidder, bid.idempotency_key) if bid.idempotency_key else None
        signature = bid_signature(bid.amount, bid.max_amount)
        return await self._transact(
            keys, idem_key, signature, lambda pipe: self._decide_and_queue(pipe, keys, bid)
        )

    async def buy_now(self, keys: ItemKeys, buyer: str, idempotency_key: str = "") -> Reply:
        idem_key = keys.idempotency(buyer, idempotency_key) if idempotency_key else None

        async def decide(pipe: Pipeline) -> Reply | None:
            fields = await pipe.hmget(keys.item, _DECISION_FIELDS)
            if fields[0] is None:
                return None
            item = _Item(fields)
            now_ms = await _time_ms(pipe)
            pipe.multi()  # type: ignore[no-untyped-call]
            return self._queue_buy(pipe, keys, item, buyer, now_ms)

        reply = await self._transact(keys, idem_key, BUY_SIGNATURE, decide)
        if self._wait is not None and (behind := await self._wait.after(self._server)) is not None:
            raise behind
        return reply

    async def _transact(
        self,
        keys: ItemKeys,
        idem_key: str | None,
        signature: str,
        decide: Callable[[Pipeline], Awaitable[Reply | None]],
    ) -> Reply:
        """One optimistic transaction on the item, retried on a WATCH conflict: a stored answer for the
        idempotency key is replayed; otherwise `decide` reads under WATCH and queues the writes (None:
        no such item), and the answer is stored under the key in the same EXEC."""
        watched = [keys.item] if idem_key is None else [keys.item, idem_key]
        async with self._server.pipeline(transaction=True) as pipe:
            for attempt in range(self._max_attempts):
                try:
                    await pipe.watch(*watched)
                    if idem_key is not None:
                        prior = await pipe.get(idem_key)
                        if prior is not None:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return replay_of(text_of(prior), signature)
                    reply = await decide(pipe)
                    if reply is None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return list(_NOT_FOUND)
                    if idem_key is not None:
                        pipe.set(idem_key, signature + "\n" + orjson.dumps(reply).decode(), px=self._ttl_ms)
                    # EXEC also for rejections: it proves the reads were one consistent snapshot.
                    await pipe.execute()
                    return reply
                except WatchError:
                    self._conflict(keys, attempt)
        log.warning("watch_gave_up", item_id=keys.item_id, attempts=self._max_attempts)
        raise StoreUnavailable(f"too much contention on item {keys.item_id}; try again")

    def _conflict(self, keys: ItemKeys, attempt: int) -> None:
        self.conflicts += 1
        WATCH_CONFLICTS.inc()
        if attempt + 1 in _LOGGED_ATTEMPTS:
            log.info("watch_contended", item_id=keys.item_id, conflicts=attempt + 1)

    async def _decide_and_queue(self, pipe: Pipeline, keys: ItemKeys, bid: BidInput) -> Reply | None:
        """Read under WATCH, apply the rules, and queue the writes (MULTI) the decision needs."""
        fields = await pipe.hmget(keys.item, _DECISION_FIELDS)
        if fields[0] is None:
            return None
        item = _Item(fields)
        now_ms = await _time_ms(pipe)
        pipe.multi()  # type: ignore[no-untyped-call]
        status = status_at(now_ms, item.starts, item.ends)
        if status is ItemStatus.SCHEDULED:
            return [ReplyCode.NOT_OPEN.value]
        if status is ItemStatus.CLOSED:
            return [ReplyCode.CLOSED.value]
        # Like place_bid.lua: a plain bid on an item whose leader has no maximum answers the plain way.
        plain = bid.max_amount is None and not item.has_max
        top = bid.max_amount if bid.max_amount is not None else bid.amount
        decision = place(item.book, bid.bidder, bid.amount or None, top)
        if decision.too_low is not None:
            return too_low_reply(decision.too_low)
        seq, leader, own_seq = item.seq, item.leader, None
        if len(decision.events) > 1 and decision.events[-1].bidder == leader:
            leader = ""  # like place_bid.lua: a named bid the leader's maximum answers outbids nobody
        for index, event in enumerate(decision.events):
            seq += 1
            encoded = bid_event(
                keys.item_id, seq, event.bidder, event.amount, now_ms, event.min_next_bid,
                currency=item.currency, proxy=event.proxy,
            )  # fmt: skip
            # Like place_bid.lua: each bid's outbox entry names the leader before it, for the notices,
            # and (audit only) the maximum its bidder leads with.
            self._send(pipe, keys, seq, encoded, leader, event.leader_max)
            leader = event.bidder
            if index == decision.own:
                own_seq = seq
        book = decision.book
        bid_seq = seq
        ends = item.ends
        if decision.events:
            ends = extended_end(item.ends, now_ms, item.rule)
            if ends != item.ends:  # the same step as the bid, like place_bid.lua
                seq += 1
                self._send(pipe, keys, seq, extended_event(keys.item_id, seq, ends, item.ends))
                pipe.hset(keys.item, ItemField.ENDS_MS.value, ends)
                pipe.zadd(keys.ends, {keys.item_id: ends})
            pipe.hset(
                keys.item,
                mapping={
                    ItemField.PRICE.value: str(book.price),
                    ItemField.HIGHEST_BIDDER.value: leader,
                    ItemField.BID_COUNT.value: book.bid_count,
                    ItemField.SEQ.value: seq,
                },
            )
        if plain:
            return accepted_reply(bid_seq, now_ms, book.bid_count, ends, seq)
        if book.leader_max is None:
            pipe.hdel(keys.item, ItemField.LEADER_MAX.value)
        else:
            pipe.hset(keys.item, ItemField.LEADER_MAX.value, book.leader_max)
            if not decision.events:  # a raise that moved no price: the archive hears of it from the outbox
                raised = max_raised_entry(keys.item_id, seq, bid.bidder, book.leader_max, now_ms)
                pipe.xadd(keys.outbox, {EVENT_FIELD: raised})
        own = decision.events[decision.own] if decision.own is not None else None
        price = book.price or 0
        return accepted_reply(
            own_seq if own_seq is not None else bid_seq, now_ms, book.bid_count, ends, seq,
            (price, leader, own.amount if own is not None else price),
        )  # fmt: skip

    def _queue_buy(self, pipe: Pipeline, keys: ItemKeys, item: _Item, buyer: str, now_ms: int) -> Reply:
        """`buy_now.lua`'s decision and writes (queued after MULTI)."""
        if item.closed or now_ms >= item.ends:
            return [ReplyCode.CLOSED.value]
        if now_ms < item.starts:
            return [ReplyCode.NOT_OPEN.value]
        book = item.book
        if not buy_now(book) or book.buy_now_price is None:
            return [ReplyCode.BUY_NOW_UNAVAILABLE.value]
        price = book.buy_now_price
        seq = item.seq + 1
        after = Book(book.starting_price, book.ladder, price=price)
        bid = bid_event(keys.item_id, seq, buyer, price, now_ms, after.min_next_bid, currency=item.currency)
        closed = closed_event(
            keys.item_id, seq + 1, outcome=Outcome.SOLD, winner=buyer, final_price=price, bid_count=1,
            closed_ms=now_ms,
        )  # fmt: skip
        pipe.hset(
            keys.item,
            mapping={
                ItemField.PRICE.value: price, ItemField.HIGHEST_BIDDER.value: buyer,
                ItemField.BID_COUNT.value: 1, ItemField.SEQ.value: seq + 1, ItemField.ENDS_MS.value: now_ms,
                ItemField.OUTCOME.value: Outcome.SOLD.value, ItemField.WINNER.value: buyer,
                ItemField.FINAL_PRICE.value: price, ItemField.CLOSED_MS.value: now_ms,
            },
        )  # fmt: skip
        self._send(pipe, keys, seq, bid, "")
        self._send(pipe, keys, seq + 1, closed)
        pipe.zrem(keys.ends, keys.item_id)
        return [ReplyCode.ACCEPTED.value, str(seq), str(now_ms), "1", str(seq + 1)]

    def _send(
        self,
        pipe: Pipeline,
        keys: ItemKeys,
        seq: int,
        event: str,
        leader: str | None = None,
        leader_max: int | None = None,
    ) -> None:
        """Queue one event for the history (id `<seq>-0`), the outbox and the live channel; a bid's outbox
        entry also names the leader before it and (audit only) the maximum of the leader after it."""
        pipe.xadd(keys.events, {EVENT_FIELD: event}, id=f"{seq}-0", maxlen=self._maxlen, approximate=True)
        fields: dict[str, str] = {EVENT_FIELD: event}
        if leader is not None:
            fields[PREVIOUS_LEADER_FIELD] = leader
        if leader_max is not None:
            fields[LEADER_MAX_FIELD] = str(leader_max)
        pipe.xadd(keys.outbox, fields)  # type: ignore[arg-type]
        pipe.execute_command(self._publish, keys.channel, event)


async def _time_ms(pipe: Pipeline) -> int:
    secs, micros = await pipe.time()
    return int(secs) * 1000 + int(micros) // 1000
