"""Reads of an item's capped event history (a Redis stream whose entry ids are `<seq>-0`).

Resuming from a `seq` is one range read because the bidder adds entry `<seq>-0` for event `seq`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.exceptions

from auction_contract.redis_layout import EVENT_FIELD, item_keys
from fanout.errors import UpstreamUnavailable
from fanout.sequencing import Event, seq_of_stream_id

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

_FIELD = EVENT_FIELD.encode()


class History:
    """XRANGE / XREVRANGE over `auction:{pN}:events:<item>`; Redis failures become `UpstreamUnavailable`."""

    def __init__(self, redis: Redis | RedisCluster, partitions: int, page: int) -> None:
        self._redis = redis
        self._partitions = partitions
        self.page = page

    def key(self, item_id: str) -> str:
        return item_keys(item_id, self._partitions).events

    async def head(self, item_id: str) -> int:
        """The newest seq in the history, 0 when there is none (no such item)."""
        try:
            entries: Any = await self._redis.xrevrange(self.key(item_id), count=1)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise UpstreamUnavailable(f"history head: {exc}") from exc
        return seq_of_stream_id(entries[0][0]) if entries else 0

    async def read(self, item_id: str, first: int, last: int | None) -> list[Event]:
        """Events `first..last` (inclusive; `last=None`: to the end), at most one page of them."""
        end = "+" if last is None else f"{last}-0"
        try:
            entries: Any = await self._redis.xrange(
                self.key(item_id), min=f"{first}-0", max=end, count=self.page
            )
        except (redis.exceptions.RedisError, OSError) as exc:
            raise UpstreamUnavailable(f"history read: {exc}") from exc
        return [Event(seq_of_stream_id(entry_id), fields[_FIELD]) for entry_id, fields in entries]
