"""Where an item lives in Redis.

Every key and the live channel of one item carry the same hash tag: the item's outbox partition.
So one Lua call never crosses slots on Redis Cluster, and each partition's outbox stream sits in
the same slot as its items. The partition of an item is a stable hash of its id, so the number of
partitions is fixed for the life of a deployment.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREFIX = "auction"


def partition_of(item_id: str, partitions: int) -> int:
    return zlib.crc32(item_id.encode()) % partitions


def partition_tag(partition: int) -> str:
    return f"{{p{partition}}}"


def outbox_key(partition: int) -> str:
    return f"{PREFIX}:{partition_tag(partition)}:outbox"


def index_key(partition: int) -> str:
    """The partition's items, scored by creation time in ms, for listing."""
    return f"{PREFIX}:{partition_tag(partition)}:items"


@dataclass(frozen=True, slots=True)
class ItemKeys:
    item_id: str
    partition: int
    item: str
    events: str
    outbox: str
    index: str
    channel: str
    idempotency_prefix: str

    def idempotency(self, bidder: str, key: str) -> str:
        return f"{self.idempotency_prefix}{bidder}:{key}"


def item_keys(item_id: str, partitions: int) -> ItemKeys:
    partition = partition_of(item_id, partitions)
    base = f"{PREFIX}:{partition_tag(partition)}"
    return ItemKeys(
        item_id=item_id,
        partition=partition,
        item=f"{base}:item:{item_id}",
        events=f"{base}:events:{item_id}",
        outbox=outbox_key(partition),
        index=index_key(partition),
        channel=f"{base}:live:{item_id}",
        idempotency_prefix=f"{base}:idem:{item_id}:",
    )
