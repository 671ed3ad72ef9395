"""Auction state in Redis: the one place that reads items and turns writer replies into outcomes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import secrets
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from auction_contract.bid_rules import Ladder, ladder_text, parse_ladder
from auction_contract.events import Outcome
from auction_contract.redis_layout import ItemField, ItemKeys, index_key, item_keys
from auction_contract.replies import ReplyCode, accepted_of, code_of
from auction_contract.rules import ItemStatus, SoftCloseRule, bid_id_for, soft_close_of
from core_bidder.committer import GroupCommitter
from core_bidder.errors import (
    BidderError,
    BidRejected,
    IdempotencyKeyReused,
    InvalidArgument,
    ItemNotFound,
    RejectReason,
    StoreUnavailable,
)
from core_bidder.replica_wait import ReplicaWait
from core_bidder.rules import AcceptedBid, ItemLive, ItemResult, ItemStatic, ItemView
from core_bidder.scripts import register
from core_bidder.writers import BidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from auction_common.redis_client import AnyRedis
    from auction_contract.replies import Reply
    from core_bidder.settings import BidderSettings
    from core_bidder.writers import BidWriter

# The order `_view` unpacks them in.
_FIELDS = tuple(
    field.value
    for field in (
        ItemField.TITLE, ItemField.DESCRIPTION, ItemField.CURRENCY, ItemField.STARTING_PRICE,
        ItemField.MIN_INCREMENT, ItemField.STARTS_MS, ItemField.CREATED_MS, ItemField.PRICE,
        ItemField.HIGHEST_BIDDER, ItemField.BID_COUNT, ItemField.SEQ, ItemField.ENDS_MS,
        ItemField.SOFT_WINDOW_MS, ItemField.SOFT_EXTENSION_MS, ItemField.SOFT_MAX_ENDS_MS,
        ItemField.RESERVE_PRICE, ItemField.OUTCOME, ItemField.WINNER, ItemField.FINAL_PRICE,
        ItemField.CLOSED_MS, ItemField.INCREMENTS, ItemField.BUY_NOW_PRICE,
    )
)  # fmt: skip
# Never read here: the leader's maximum (`ItemField.LEADER_MAX`) stays inside the bid step.
_STATIC_CACHE_SIZE = 100_000
_LIST_SCAN_BUDGET = 2_000
_NOT_OPEN = BidRejected(RejectReason.AUCTION_NOT_OPEN)
_CLOSED = BidRejected(RejectReason.AUCTION_CLOSED)
_BUY_NOW_UNAVAILABLE = BidRejected(RejectReason.BUY_NOW_UNAVAILABLE)
_UNANSWERED = BidderError("no outcome")  # a placeholder, replaced for every bid


class BidRequest(NamedTuple):
    item_id: str
    bidder: str
    # 0: none (a maximum alone).
    amount: int
    idempotency_key: str
    max_amount: int | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_item_id() -> str:
    return "it" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


class ItemStore:
    def __init__(self, redis: AnyRedis, settings: BidderSettings, writer: BidWriter) -> None:
        self._redis = redis
        self._committer = GroupCommitter(writer)
        self._partitions = settings.partitions
        self._maxlen = str(settings.history_maxlen)
        self._publish = settings.publish_command
        self._create = register(redis, "create_item")
        self._wait = ReplicaWait.of(settings)
        self._static: OrderedDict[str, ItemStatic] = OrderedDict()
        self._keys: dict[str, ItemKeys] = {}

    def keys_for(self, item_id: str) -> ItemKeys:
        keys = self._keys.get(item_id)
        if keys is None:
            if len(self._keys) >= _STATIC_CACHE_SIZE:
                self._keys.clear()
            keys = self._keys[item_id] = item_keys(item_id, self._partitions)
        return keys

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def create_item(
        self,
        title: str,
        description: str,
        currency: str,
        starting_price: int,
        min_increment: int,
        starts_ms: int | None,
        ends_ms: int,
        *,
        soft_close: SoftCloseRule | None = None,
        reserve_price: int | None = None,
        increments: Ladder | None = None,
        buy_now_price: int | None = None,
    ) -> ItemView:
        secs, micros = await self._redis.time()
        created_ms = secs * 1000 + micros // 1000
        starts = created_ms if starts_ms is None else starts_ms
        if ends_ms <= max(starts, created_ms):
            raise InvalidArgument("ends_at must be after starts_at and in the future")
        item_id = new_item_id()
        if (
            soft_close is not None
            and soft_close.max_ends_ms is not None
            and soft_close.max_ends_ms <= ends_ms
        ):
            raise InvalidArgument("soft_close.max_ends_at must be after ends_at")
        static = ItemStatic(
            item_id, title, description, currency, starting_price, min_increment, starts, created_ms,
            soft_close, reserve_price, increments, buy_now_price,
        )  # fmt: skip
        keys = self.keys_for(item_id)
        rule = (
            (str(soft_close.window_ms), str(soft_close.extension_ms), _ms_or_empty(soft_close.max_ends_ms))
            if soft_close is not None
            else ("", "", "")
        )
        created = await self._create(
            keys=[keys.item, keys.events, keys.outbox, keys.index, keys.ends],
            args=[
                item_id, title, description, currency, str(starting_price), str(min_increment),
                str(starts), str(ends_ms), str(created_ms), self._maxlen, keys.channel, self._publish,
                static.created_event(ends_ms), static.created_event(ends_ms, for_archive=True),
                *rule, _ms_or_empty(reserve_price), "" if increments is None else ladder_text(increments),
                _ms_or_empty(buy_now_price),
            ],
        )  # fmt: skip
        if created != 1:  # a random 80-bit id collided; vanishingly rare, so let the caller retry
            raise InvalidArgument("item id collision, retry")
        if self._wait is not None and (behind := await self._wait.after(self._redis)) is not None:
            raise behind  # the item exists on the primary; a retry creates another (no key to replay)
        self._remember(static)
        return ItemView(static, ItemLive(None, None, 0, 1, ends_ms))

    async def get_item(self, item_id: str) -> ItemView:
        fields = await self._redis.hmget(self.keys_for(item_id).item, _FIELDS)
        view = self._view(item_id, fields)
        if view is None:
            raise ItemNotFound(item_id)
        return view

    async def place_bid(
        self, item_id: str, bidder: str, amount: int, idempotency_key: str, max_amount: int | None = None
    ) -> AcceptedBid:
        """`amount` 0 with `max_amount`: a maximum alone."""
        replies = await self._committer.submit(
            self.keys_for(item_id), [BidInput(bidder, amount, idempotency_key, max_amount)]
        )
        return await self._accepted(item_id, bidder, amount, replies[0])

    async def buy_now(self, item_id: str, buyer: str, idempotency_key: str = "") -> AcceptedBid:
        """Sold to `buyer` at the buy-now price and closed, in one atomic step; or the rejection."""
        keys = self.keys_for(item_id)
        reply = await self._committer.writer.buy_now(keys, buyer, idempotency_key)
        code = code_of(reply)
        if code is not ReplyCode.ACCEPTED:
            raise _rejection(item_id, reply)
        seq, placed_ms = int(reply[1]), int(reply[2])
        view = await self.get_item(item_id)  # closed now, so final: the bid, then its `closed` event
        return AcceptedBid(bid_id_for(item_id, seq), seq, view.live.current_price or 0, placed_ms, view)

    async def place_bids(self, bids: Sequence[BidRequest]) -> list[AcceptedBid | BidderError]:
        """Many bids at once: each gets the outcome it would have got alone, errors included.

        The bids of one item go to the committer as one entry, in request order (one future per item,
        not per bid: in a bidding war a call carries dozens of bids for the same item)."""
        by_item: dict[str, tuple[list[int], list[BidInput]]] = {}
        for index, bid in enumerate(bids):
            entry = by_item.get(bid.item_id)
            if entry is None:
                entry = by_item[bid.item_id] = ([], [])
            entry[0].append(index)
            entry[1].append(BidInput(bid.bidder, bid.amount, bid.idempotency_key, bid.max_amount))
        futures = [
            self._committer.submit(self.keys_for(item_id), inputs) for item_id, (_, inputs) in by_item.items()
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        outcomes: list[AcceptedBid | BidderError] = [_UNANSWERED] * len(bids)
        for (indices, _), replies in zip(by_item.values(), results, strict=True):
            if isinstance(replies, RedisConnectionError | RedisTimeoutError):
                # This item's write failed (its Redis node unreachable); others may have been accepted.
                for index in indices:
                    outcomes[index] = StoreUnavailable("auction store unavailable")
                continue
            if isinstance(replies, StoreUnavailable):  # applied, not yet on enough replicas (ReplicasBehind)
                for index in indices:
                    outcomes[index] = replies
                continue
            if isinstance(replies, BaseException):
                raise replies  # not a failure of the store: a bug, reported for the whole call
            for index, reply in zip(indices, replies, strict=True):
                bid = bids[index]
                try:
                    outcomes[index] = await self._accepted(bid.item_id, bid.bidder, bid.amount, reply)
                except BidderError as exc:
                    outcomes[index] = exc
        return outcomes

    async def _accepted(self, item_id: str, bidder: str, amount: int, reply: Reply) -> AcceptedBid:
        """Turn a writer reply into the accepted bid, or raise the rejection it stands for."""
        if code_of(reply) is not ReplyCode.ACCEPTED:
            raise _rejection(item_id, reply)
        seq, placed_ms, bid_count, ends_ms, item_seq, price, leader, own = accepted_of(reply)
        static = await self._static_of(item_id)
        if price is None or leader is None or own is None:  # the plain path: the bid leads at its amount
            live = ItemLive(amount, bidder, bid_count, item_seq, ends_ms)
            return AcceptedBid(bid_id_for(item_id, seq), seq, amount, placed_ms, ItemView(static, live))
        live = ItemLive(price, leader, bid_count, item_seq, ends_ms)
        return AcceptedBid(
            bid_id_for(item_id, seq), seq, own, placed_ms, ItemView(static, live), leading=leader == bidder
        )

    async def drain(self) -> None:
        await self._committer.drain()

    async def list_items(
        self, status: ItemStatus | None, limit: int, cursor: str
    ) -> tuple[list[ItemView], str]:
        """Newest first across every partition's index; the cursor is the last (created, id) seen."""
        before = _decode_cursor(cursor)
        now = now_ms()
        found: list[ItemView] = []
        scanned = 0
        while len(found) < limit and scanned < _LIST_SCAN_BUDGET:
            batch = await self._candidates(before, limit)
            if not batch:
                return found, ""
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, item_id in batch:
                    pipe.hmget(self.keys_for(item_id).item, _FIELDS)
                rows = await pipe.execute()
            for (score, item_id), fields in zip(batch, rows, strict=True):
                scanned += 1
                before = (score, item_id)
                view = self._view(item_id, fields)
                if view is not None and (status is None or view.status(now) is status):
                    found.append(view)
                    if len(found) == limit:
                        break
        return found, _encode_cursor(before) if before is not None else ""

    async def _candidates(self, before: tuple[int, str] | None, limit: int) -> list[tuple[int, str]]:
        top = "+inf" if before is None else str(before[0])
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in range(self._partitions):
                pipe.zrevrangebyscore(index_key(p), top, "-inf", start=0, num=limit + 16, withscores=True)
            per_partition = await pipe.execute()
        merged: list[tuple[int, str]] = []
        for rows in per_partition:
            for member, score in rows:
                entry = (int(score), member.decode() if isinstance(member, bytes) else str(member))
                if before is None or entry < before:
                    merged.append(entry)
        return heapq.nlargest(limit, merged)

    async def _static_of(self, item_id: str) -> ItemStatic:
        static = self._static.get(item_id)
        if static is None:
            return (await self.get_item(item_id)).static
        return static

    def _remember(self, static: ItemStatic) -> None:
        self._static[static.id] = static
        if len(self._static) > _STATIC_CACHE_SIZE:
            self._static.popitem(last=False)

    def _view(self, item_id: str, fields: list[bytes | str | None]) -> ItemView | None:
        if fields[0] is None:
            return None
        values = (None if f is None else f.decode() if isinstance(f, bytes) else f for f in fields)
        (title, desc, cur, sp, inc, st, ct, price, hb, bc, seq, et, scw, scx, scm, rp, out, win, fp, cat,
         incs, bn) = values  # fmt: skip
        static = self._static.get(item_id)
        if static is None:
            static = ItemStatic(
                item_id, title or "", desc or "", cur or "", int(sp or 0), int(inc or 1),
                int(st or 0), int(ct or 0), soft_close_of(scw, scx, scm), int(rp) if rp else None,
                parse_ladder(incs, int(inc or 1)) if incs else None, int(bn) if bn else None,
            )  # fmt: skip
            self._remember(static)
        result = None
        if out:
            result = ItemResult(Outcome(out), win, int(fp) if fp else None, int(cat or 0))
        live = ItemLive(
            None if price is None else int(price), hb, int(bc or 0), int(seq or 0), int(et or 0), result
        )
        return ItemView(static, live)


def _rejection(item_id: str, reply: Reply) -> BidderError:
    """The error a writer's refusal stands for."""
    code = code_of(reply)
    if code is ReplyCode.TOO_LOW:
        return BidRejected(RejectReason.BID_TOO_LOW, int(reply[1]))
    if code is ReplyCode.NOT_OPEN:
        return _NOT_OPEN
    if code is ReplyCode.CLOSED:
        return _CLOSED
    if code is ReplyCode.KEY_REUSED:
        return IdempotencyKeyReused()
    if code is ReplyCode.BUY_NOW_UNAVAILABLE:
        return _BUY_NOW_UNAVAILABLE
    return ItemNotFound(item_id)


def _ms_or_empty(value: int | None) -> str:
    return "" if value is None else str(value)


def _encode_cursor(position: tuple[int, str]) -> str:
    raw = f"{position[0]}:{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, _, item_id = raw.partition(":")
        return int(score), item_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor is not valid") from None


__all__ = ["ItemStore", "new_item_id", "now_ms"]
