"""The two bid-write strategies. Both return `place_bid.lua`'s reply shape, so callers can't tell them apart.

`LuaBidWriter` is the production path: one EVALSHA per item for a whole batch of bids (group commit).
It works on a single server and on Redis Cluster alike: each call names keys of one hash tag only.
`WatchBidWriter` applies the same rules under WATCH/MULTI/EXEC with retries, one transaction per bid;
it exists to be measured against Lua, and counts its conflicts (single server only, see settings).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import orjson
import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, WatchError

from auction_contract.events import bid_event, extended_event
from auction_contract.redis_layout import EVENT_FIELD, PREVIOUS_LEADER_FIELD, ItemField
from auction_contract.replies import Reply, ReplyCode, accepted_reply, too_low_reply
from auction_contract.rules import ItemStatus, extended_end, min_next_bid, soft_close_of, status_at
from core_bidder.errors import StoreUnavailable
from core_bidder.scripts import register

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from auction_common.redis_client import AnyRedis
    from auction_contract.redis_layout import ItemKeys
    from core_bidder.settings import BidderSettings

__all__ = ["BidInput", "BidWriter", "Group", "LuaBidWriter", "Reply", "WatchBidWriter"]
# What the WATCH writer reads under WATCH, in the order it unpacks them.
_DECISION_FIELDS = [
    ItemField.STARTING_PRICE.value, ItemField.MIN_INCREMENT.value, ItemField.STARTS_MS.value,
    ItemField.ENDS_MS.value, ItemField.PRICE.value, ItemField.BID_COUNT.value, ItemField.SEQ.value,
    ItemField.CURRENCY.value, ItemField.SOFT_WINDOW_MS.value, ItemField.SOFT_EXTENSION_MS.value,
    ItemField.SOFT_MAX_ENDS_MS.value, ItemField.HIGHEST_BIDDER.value,
]  # fmt: skip
_NOT_FOUND: Reply = [ReplyCode.NOT_FOUND.value]

WATCH_CONFLICTS = Counter(
    "bidder_watch_conflicts_total", "WATCH transactions aborted by a concurrent write and retried"
)
log = structlog.get_logger(__name__)
_LOGGED_ATTEMPTS = frozenset({10, 100, 1000})  # one log line per bid at each of these conflict counts


class BidInput(NamedTuple):
    bidder: str
    amount: int
    idempotency_key: str


Group = tuple["ItemKeys", Sequence[BidInput]]


class BidWriter(Protocol):
    async def place_groups(self, groups: Sequence[Group]) -> list[list[Reply] | Exception]:
        """Apply each item's bids in order; one reply per bid, grouped like the input, or an exception
        in place of an item whose call failed (the others' outcomes stand)."""
        ...


class _Common:
    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        self._redis = redis
        self._ttl_ms = settings.idempotency_ttl_seconds * 1000
        self._maxlen = settings.history_maxlen
        self._publish = settings.publish_command


class LuaBidWriter(_Common):
    """One EVALSHA per item and batch; several items go out in one pipeline (one round trip per node)."""

    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        super().__init__(redis, settings)
        self._script = register(redis, "place_bid")
        self._ttl_s, self._maxlen_s = str(self._ttl_ms), str(self._maxlen)

    def _call(self, keys: ItemKeys, bids: Sequence[BidInput]) -> tuple[list[str], list[str]]:
        key_list = [keys.item, keys.events, keys.outbox, keys.ends]
        args = [keys.item_id, self._ttl_s, self._maxlen_s, keys.channel, self._publish]
        for bidder, amount, idempotency_key in bids:
            if idempotency_key:
                key_list.append(keys.idempotency(bidder, idempotency_key))
                args += (bidder, str(amount), str(len(key_list) - 4))
            else:
                args += (bidder, str(amount), "0")
        return key_list, args

    async def place_groups(self, groups: Sequence[Group]) -> list[list[Reply] | Exception]:
        calls = [self._call(keys, bids) for keys, bids in groups]
        if len(calls) == 1:
            key_list, args = calls[0]
            return [_replies(await self._script(keys=key_list, args=args))]
        # EVALSHA queued as a raw command: redis-py's cluster pipeline blocks its `evalsha` method (it
        # cannot know a script's keys share a slot; ours always do, and it routes by them), and awaiting
        # the script object on it would re-initialize the pipeline and drop what was queued. Neither
        # pipeline reloads scripts here, so a node that lost its script cache (restart, SCRIPT FLUSH)
        # answers NOSCRIPT: the script did not run, and that call alone is repeated through the script
        # object, which loads it on the node and runs it.
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_list, args in calls:
                pipe.execute_command("EVALSHA", self._script.sha, len(key_list), *key_list, *args)
            results = await pipe.execute(raise_on_error=False)
        for index, result in enumerate(results):
            if isinstance(result, NoScriptError):
                key_list, args = calls[index]
                try:
                    results[index] = await self._script(keys=key_list, args=args)
                except RedisError as exc:
                    results[index] = exc
        # A failure stays with its own item: on a cluster the other items' calls ran on other nodes and
        # their bids may be accepted, so their callers must hear so.
        return [r if isinstance(r, Exception) else _replies(r) for r in results]


class WatchBidWriter(_Common):
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
            return [await self.place_bid(keys, *bid) for bid in bids]

        outcomes = await asyncio.gather(*(group(keys, bids) for keys, bids in groups), return_exceptions=True)
        results: list[list[Reply] | Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not an item's failure
            results.append(outcome)
        return results

    async def place_bid(self, keys: ItemKeys, bidder: str, amount: int, idempotency_key: str) -> Reply:
        idem_key = keys.idempotency(bidder, idempotency_key) if idempotency_key else None
        watched = [keys.item] if idem_key is None else [keys.item, idem_key]
        amount_s = str(amount)
        async with self._server.pipeline(transaction=True) as pipe:
            for _attempt in range(self._max_attempts):
                try:
                    await pipe.watch(*watched)
                    if idem_key is not None:
                        prior = await pipe.get(idem_key)
                        if prior is not None:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]
                            return _replay(_text(prior), amount_s)
                    reply = await self._decide_and_queue(pipe, keys, bidder, amount, amount_s)
                    if reply is None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return list(_NOT_FOUND)
                    if idem_key is not None:
                        pipe.set(idem_key, amount_s + "\n" + orjson.dumps(reply).decode(), px=self._ttl_ms)
                    # EXEC also for rejections: it proves the reads were one consistent snapshot.
                    await pipe.execute()
                    return reply
                except WatchError:
                    self.conflicts += 1
                    WATCH_CONFLICTS.inc()
                    if _attempt + 1 in _LOGGED_ATTEMPTS:
                        log.info("watch_contended", item_id=keys.item_id, conflicts=_attempt + 1)
                    continue
        log.warning("watch_gave_up", item_id=keys.item_id, attempts=self._max_attempts)
        raise StoreUnavailable(f"too much contention on item {keys.item_id}; try again")

    async def _decide_and_queue(
        self, pipe: Pipeline, keys: ItemKeys, bidder: str, amount: int, amount_s: str
    ) -> Reply | None:
        """Read under WATCH, apply the rules, and queue the writes (MULTI) the decision needs."""
        fields = await pipe.hmget(keys.item, _DECISION_FIELDS)
        if fields[0] is None:
            return None
        sp, inc, st, et, price, bc, seq, currency, scw, scx, scm, leader = (
            _text(x) if x is not None else "" for x in fields
        )
        secs, micros = await pipe.time()
        now_ms = secs * 1000 + micros // 1000
        pipe.multi()  # type: ignore[no-untyped-call]
        status = status_at(now_ms, int(st), int(et))
        if status is ItemStatus.SCHEDULED:
            return [ReplyCode.NOT_OPEN.value]
        if status is ItemStatus.CLOSED:
            return [ReplyCode.CLOSED.value]
        current = int(price) if price else None
        needed = min_next_bid(int(sp), current, int(inc))
        if amount < needed:
            return too_low_reply(needed)
        new_seq = int(seq) + 1
        new_count = int(bc) + 1
        event = bid_event(keys.item_id, new_seq, bidder, amount, now_ms, amount + int(inc), currency=currency)
        pipe.hset(
            keys.item,
            mapping={
                ItemField.PRICE.value: amount_s,
                ItemField.HIGHEST_BIDDER.value: bidder,
                ItemField.BID_COUNT.value: new_count,
                ItemField.SEQ.value: new_seq,
            },
        )
        pipe.xadd(keys.events, {EVENT_FIELD: event}, id=f"{new_seq}-0", maxlen=self._maxlen, approximate=True)
        # Like place_bid.lua: the bid's outbox entry names the leader before it, for the relay's notices.
        pipe.xadd(keys.outbox, {EVENT_FIELD: event, PREVIOUS_LEADER_FIELD: leader})
        pipe.execute_command(self._publish, keys.channel, event)
        ends = int(et)
        moved = extended_end(ends, now_ms, soft_close_of(scw, scx, scm))
        if moved == ends:
            return accepted_reply(new_seq, now_ms, new_count, et)
        # The same step as the bid, like place_bid.lua: the end, its event (next seq), the closer's index.
        item_seq = new_seq + 1
        notice = extended_event(keys.item_id, item_seq, moved, ends)
        pipe.hset(keys.item, mapping={ItemField.ENDS_MS.value: moved, ItemField.SEQ.value: item_seq})
        pipe.xadd(
            keys.events, {EVENT_FIELD: notice}, id=f"{item_seq}-0", maxlen=self._maxlen, approximate=True
        )
        pipe.xadd(keys.outbox, {EVENT_FIELD: notice})
        pipe.execute_command(self._publish, keys.channel, notice)
        pipe.zadd(keys.ends, {keys.item_id: moved})
        return accepted_reply(new_seq, now_ms, new_count, moved, item_seq)


def _replay(prior: str, amount_s: str) -> Reply:
    stored_amount, _, reply = prior.partition("\n")
    if stored_amount != amount_s:
        return [ReplyCode.KEY_REUSED.value]
    decoded: Reply = orjson.loads(reply)
    return decoded


def _replies(raw: list[list[bytes | str]]) -> list[Reply]:
    return [[_text(x) for x in reply] for reply in raw]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
