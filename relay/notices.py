"""Per-bidder notices from the outbox, after JetStream stored the events: who hears what.

The pump hands over the events of a round that JetStream acknowledged, in outbox order, before it
removes them from the outbox. `plan_notices` (no I/O) turns them into one `notify.lua` call per item:

- a bid: its bidder joins the item's bidder set; the leader before it (the outbox entry's
  `PREVIOUS_LEADER_FIELD`, written in the bid's own Lua step) hears `outbid` unless it is the same bidder
  (the step leaves it empty on a named bid that the leader's maximum answers at once: the leader never
  lost the lead, and the challenger hears `outbid` from the maximum's bid right after);
- an extension: every bidder in the set hears `extended`;
- the close: the winner hears `won`, every other bidder `lost` (everyone `lost` without a sale), and the
  set expires a while later.

Notices ride on the relay's rounds: while JetStream is unreachable nothing is relayed, so they wait with
the outbox (and still come, late). At-least-once: a relay that dies after the notices and before the
removal sends them again with the re-read entries. Every input of a notice (the previous leader, the
winner, the set as of that point in the outbox) is fixed by then, so a repeat is the same notice to the
same bidder, never another one. (A later bidder may also hear a repeated `extended`, for an item they
have bid on since.) Several relays share a partition's entries (one consumer group), so with more
than one relay a bid and its item's close may be handled out of order: a bidder whose bid came just
before the close might then miss `lost`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from auction_contract.events import EventKind, Outcome
from auction_contract.notices import NoticeKind, extended_notice, outbid_notice, result_notice
from auction_contract.redis_layout import NOTICE_CHANNEL_PREFIX, bidders_key
from auction_contract.rules import BIDDER_PATTERN

if TYPE_CHECKING:
    from auction_common.redis_client import AnyRedis

ADD, ONE, MEMBERS, EXPIRE = "A", "O", "M", "X"


@dataclass
class ItemNotices:
    """One item's `notify.lua` call: its bidder set and the operations in outbox order."""

    key: str
    args: list[str] = field(default_factory=list)

    def add(self, op: str, a: str, b: str | bytes = "") -> None:
        self.args += (op, a, b.decode() if isinstance(b, bytes) else b)


def plan_notices(
    events: Iterable[tuple[int, dict[str, Any], str | None]], set_ttl_ms: int
) -> list[ItemNotices]:
    """The calls for `(partition, event, previous leader)` triples given in outbox order."""
    calls: dict[str, ItemNotices] = {}
    for partition, doc, previous in events:
        item_id, seq, kind = doc["item_id"], doc["seq"], doc["type"]
        if kind not in (EventKind.BID, EventKind.EXTENDED, EventKind.CLOSED):
            continue
        key = bidders_key(partition, item_id)
        call = calls.get(key)
        if call is None:
            call = calls[key] = ItemNotices(key)
        if kind == EventKind.BID:
            bidder = doc["bidder"]
            call.add(ADD, bidder)
            if previous and previous != bidder and BIDDER_PATTERN.fullmatch(previous):
                notice = outbid_notice(
                    item_id, seq, doc["current_price"], doc["min_next_bid"], doc.get("currency", "")
                )
                call.add(ONE, previous, notice)
        elif kind == EventKind.EXTENDED:
            call.add(MEMBERS, "", extended_notice(item_id, seq, doc["ends_at"]))
        else:
            winner, price = doc.get("winner"), doc.get("final_price")
            if doc.get("outcome") == Outcome.SOLD and isinstance(winner, str):
                call.add(ONE, winner, result_notice(NoticeKind.WON, item_id, seq, price))
                call.add(MEMBERS, winner, result_notice(NoticeKind.LOST, item_id, seq, price))
            else:
                call.add(MEMBERS, "", result_notice(NoticeKind.LOST, item_id, seq, None))
            call.add(EXPIRE, str(set_ttl_ms))
    return [call for call in calls.values() if call.args]


class NoticeSender:
    """Runs the planned calls: one EVALSHA per item, all items of a round in one pipeline."""

    def __init__(self, redis: AnyRedis) -> None:
        source = (resources.files("relay") / "lua" / "notify.lua").read_text(encoding="utf-8")
        self._redis = redis
        self._script = redis.register_script(source)

    async def send(self, calls: Sequence[ItemNotices]) -> int:
        """How many notices went out; raises `RedisError` if any call failed (the round is retried)."""
        if not calls:
            return 0
        # EVALSHA as a raw command, routed by its one key: redis-py's cluster pipeline refuses `evalsha`
        # (see core_bidder/writers.py); a node without the script answers NOSCRIPT and that call alone is
        # repeated through the script object, which loads it.
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.execute_command(
                    "EVALSHA", self._script.sha, 1, call.key, NOTICE_CHANNEL_PREFIX, *call.args
                )
            results = await pipe.execute(raise_on_error=False)
        sent = 0
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, NoScriptError):
                result = await self._script(keys=[call.key], args=[NOTICE_CHANNEL_PREFIX, *call.args])
            if isinstance(result, Exception):
                raise result
            sent += int(result)
        return sent
