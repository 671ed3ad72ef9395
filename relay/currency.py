"""Each item's currency, for bid events (the outbox entry of a bid has none; the item hash does).

A relay normally sees an item's created event before its bids (same partition, in order), so the cache
answers almost every lookup. After a restart or a claim it asks the item hash in Redis, one pipeline per
batch. An item whose hash is gone gets "": the archiver then takes the currency from its items table.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from auction_contract.redis_layout import item_keys

if TYPE_CHECKING:
    from collections.abc import Iterable

    from auction_common.redis_client import AnyRedis

CURRENCY_FIELD = "cur"


class Currencies:
    def __init__(self, redis: AnyRedis, partitions: int, size: int) -> None:
        self._redis = redis
        self._partitions = partitions
        self._size = size
        self._known: OrderedDict[str, str] = OrderedDict()

    def learn(self, item_id: str, currency: str) -> None:
        self._known[item_id] = currency
        self._known.move_to_end(item_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    def cached(self, item_id: str) -> str | None:
        return self._known.get(item_id)

    async def resolve(self, item_ids: Iterable[str]) -> dict[str, str]:
        """The currency of each item, from the cache or else the item hash ("" when unknown)."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for item_id in item_ids:
            currency = self._known.get(item_id)
            if currency is None:
                missing.append(item_id)
            else:
                found[item_id] = currency
        if missing:
            async with self._redis.pipeline(transaction=False) as pipe:
                for item_id in missing:
                    pipe.hget(item_keys(item_id, self._partitions).item, CURRENCY_FIELD)
                replies = await pipe.execute()
            for item_id, raw in zip(missing, replies, strict=True):
                currency = raw.decode() if isinstance(raw, bytes) else (raw or "")
                found[item_id] = currency
                if currency:
                    self.learn(item_id, currency)
        return found
