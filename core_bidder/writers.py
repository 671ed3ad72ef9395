"""The bid writers' shared shapes and the Lua strategy. Both strategies return `place_bid.lua`'s and
`buy_now.lua`'s reply shapes, so callers can't tell them apart.

`LuaBidWriter` is the production path: one EVALSHA per item for a whole batch of bids (group commit).
It works on a single server and on Redis Cluster alike: each call names keys of one hash tag only.
`core_bidder.watch_writer.WatchBidWriter` applies the same rules under WATCH/MULTI/EXEC.

With `BIDDER_REDIS_WAIT_REPLICAS` both wait for replicas once per batch (`core_bidder.replica_wait`): a
batch whose WAIT falls short answers `ReplicasBehind` for every item it carried. Without it, the write
path is exactly what it was: one `is None` test per batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import orjson
from redis.exceptions import NoScriptError, RedisError

from auction_contract.replies import Reply, ReplyCode
from core_bidder.replica_wait import ReplicaWait
from core_bidder.scripts import register

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis
    from auction_contract.redis_layout import ItemKeys
    from core_bidder.errors import ReplicasBehind
    from core_bidder.settings import BidderSettings

__all__ = [
    "BUY_SIGNATURE",
    "BidInput",
    "BidWriter",
    "Group",
    "LuaBidWriter",
    "Reply",
    "WriterBase",
    "bid_signature",
    "replay_of",
    "text_of",
]


class BidInput(NamedTuple):
    bidder: str
    # 0: none (a maximum alone).
    amount: int
    idempotency_key: str
    # A proxy bid's maximum (None: a plain bid). Never logged: only its owner may learn it.
    max_amount: int | None = None


# What a buy-now's idempotency record compares (bids' signatures are digits and "/" only).
BUY_SIGNATURE = "buy"


def bid_signature(amount: int, max_amount: int | None) -> str:
    """The bid as `place_bid.lua` takes it and its idempotency record compares it: the amount for a
    plain bid, `<amount>/<max>` (`/<max>` without an amount) for one with a maximum."""
    if max_amount is None:
        return str(amount)
    return f"{amount or ''}/{max_amount}"


Group = tuple["ItemKeys", Sequence[BidInput]]


class BidWriter(Protocol):
    async def place_groups(self, groups: Sequence[Group]) -> list[list[Reply] | Exception]:
        """Apply each item's bids in order; one reply per bid, grouped like the input, or an exception
        in place of an item whose call failed (the others' outcomes stand)."""
        ...

    async def buy_now(self, keys: ItemKeys, buyer: str, idempotency_key: str = "") -> Reply:
        """`buy_now.lua`'s reply: sold to `buyer` and closed at once, or why not (a repeated key: the
        first answer again)."""
        ...


class WriterBase:
    """What both strategies take from the settings."""

    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        self._redis = redis
        self._ttl_ms = settings.idempotency_ttl_seconds * 1000
        self._maxlen = settings.history_maxlen
        self._publish = settings.publish_command
        # None: no WAIT (the default).
        self._wait = ReplicaWait.of(settings)

    async def _waited(self, results: list[list[Reply] | Exception]) -> list[list[Reply] | Exception]:
        """`results` of steps that have completed, once the replicas have them; else `ReplicasBehind` in
        place of every item's replies (a failed item keeps its own error)."""
        assert self._wait is not None
        behind = await self._wait.after(self._redis)
        return results if behind is None else _all_behind(results, behind)


def _all_behind(
    results: list[list[Reply] | Exception], behind: ReplicasBehind
) -> list[list[Reply] | Exception]:
    return [result if isinstance(result, Exception) else behind for result in results]


class LuaBidWriter(WriterBase):
    """One EVALSHA per item and batch; several items go out in one pipeline (one round trip per node)."""

    def __init__(self, redis: AnyRedis, settings: BidderSettings) -> None:
        super().__init__(redis, settings)
        self._script = register(redis, "place_bid")
        self._buy = register(redis, "buy_now")
        self._ttl_s, self._maxlen_s = str(self._ttl_ms), str(self._maxlen)

    def _call(self, keys: ItemKeys, bids: Sequence[BidInput]) -> tuple[list[str], list[str]]:
        key_list = [keys.item, keys.events, keys.outbox, keys.ends]
        args = [keys.item_id, self._ttl_s, self._maxlen_s, keys.channel, self._publish]
        for bidder, amount, idempotency_key, max_amount in bids:
            amount_s = str(amount) if max_amount is None else bid_signature(amount, max_amount)
            if idempotency_key:
                key_list.append(keys.idempotency(bidder, idempotency_key))
                args += (bidder, amount_s, str(len(key_list) - 4))
            else:
                args += (bidder, amount_s, "0")
        return key_list, args

    async def buy_now(self, keys: ItemKeys, buyer: str, idempotency_key: str = "") -> Reply:
        key_list = [keys.item, keys.events, keys.outbox, keys.ends]
        if idempotency_key:
            key_list.append(keys.idempotency(buyer, idempotency_key))
        reply = await self._buy(
            keys=key_list,
            args=[keys.item_id, self._maxlen_s, keys.channel, self._publish, buyer, self._ttl_s],
        )
        if self._wait is not None and (behind := await self._wait.after(self._redis)) is not None:
            raise behind
        return [text_of(x) for x in reply]

    async def place_groups(self, groups: Sequence[Group]) -> list[list[Reply] | Exception]:
        calls = [self._call(keys, bids) for keys, bids in groups]
        if self._wait is not None:
            return await self._place_waited(calls, self._wait)
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

    async def _place_waited(
        self, calls: list[tuple[list[str], list[str]]], wait: ReplicaWait
    ) -> list[list[Reply] | Exception]:
        """Every item's EVALSHA, then the fence and WAIT, in one pipeline: one round trip per batch.

        A single server only (the settings refuse WAIT on a cluster). A call answered NOSCRIPT did not
        run: it is run again through the script object (which loads it), and then waited for once more.
        """
        started = time.perf_counter()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_list, args in calls:
                pipe.execute_command("EVALSHA", self._script.sha, len(key_list), *key_list, *args)
            wait.queue(pipe)
            results = await pipe.execute(raise_on_error=False)
        behind = wait.check(results[-2:], started)
        del results[-2:]
        rerun = False
        for index, result in enumerate(results):
            if isinstance(result, NoScriptError):
                rerun = True
                key_list, args = calls[index]
                try:
                    results[index] = await self._script(keys=key_list, args=args)
                except RedisError as exc:
                    results[index] = exc
        if behind is None and rerun:
            behind = await wait.after(self._redis)
        replies = [r if isinstance(r, Exception) else _replies(r) for r in results]
        return replies if behind is None else _all_behind(replies, behind)


def replay_of(prior: str, amount_s: str) -> Reply:
    stored_amount, _, reply = prior.partition("\n")
    if stored_amount != amount_s:
        return [ReplyCode.KEY_REUSED.value]
    decoded: Reply = orjson.loads(reply)
    return decoded


def _replies(raw: list[list[bytes | str]]) -> list[Reply]:
    return [[text_of(x) for x in reply] for reply in raw]


def text_of(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
