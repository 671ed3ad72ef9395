"""Where an item lives in Redis: key builders, the item hash's fields and the streams' field.

Every key and the live channel of one item carry the same hash tag: the item's outbox partition.
So one Lua call never crosses slots on Redis Cluster, and each partition's outbox stream sits in
the same slot as its items. The partition of an item is a stable hash of its id, so the number of
partitions is fixed for the life of a deployment.

The Lua scripts (`core_bidder/lua/`) spell the same names; `tests/test_contract_layout.py` reads the
scripts and holds them to these constants.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "auction"
# The one field of every history and outbox stream entry: the event's JSON.
EVENT_FIELD = "e"
# The second field of a bid's outbox entry: who led before the bid ("" for nobody). Written in the same
# Lua step as the bid, so the relay's "outbid" notice names the right bidder however often it re-reads it.
PREVIOUS_LEADER_FIELD = "p"
# AUDIT ONLY, never public: a bid's outbox entry's third field, present when its bidder (the leader right
# after it) leads with a maximum above its amount: that maximum. The relay carries it to the archive as
# a `MaximumAudit` record on its own stream (`auction.audit.*`, never `auction.events.*`), which keeps it
# where no public call reads it, for audit and for the rebuild (`lm`). Never in the history stream, the
# live channel or any event JSON.
LEADER_MAX_FIELD = "m"
# Per-bidder notices (outbid, won, lost, extended) go out on `notice_channel(bidder)` with plain PUBLISH,
# which a Redis Cluster delivers to subscribers on every node: a bidder's channel belongs to no item.
NOTICE_CHANNEL_PREFIX = f"{PREFIX}:notices:"
# The replication fence of the bidder and the relay (`core_bidder.replica_wait`, `relay.replica_wait`): an
# empty PUBLISH nobody subscribes to, sent right before each WAIT so that the WAIT covers every write that
# completed before it.
REPLICATION_FENCE_CHANNEL = f"{PREFIX}:replication-fence"


class ItemField(StrEnum):
    """The item hash's fields."""

    TITLE = "title"
    DESCRIPTION = "desc"
    CURRENCY = "cur"
    STARTING_PRICE = "sp"
    MIN_INCREMENT = "inc"
    STARTS_MS = "st"
    ENDS_MS = "et"
    CREATED_MS = "ct"
    PRICE = "price"
    HIGHEST_BIDDER = "hb"
    BID_COUNT = "bc"
    SEQ = "seq"
    # Soft close (absent: a hard end): window and extension in ms, the cap in Unix ms ("" for none).
    SOFT_WINDOW_MS = "scw"
    SOFT_EXTENSION_MS = "scx"
    SOFT_MAX_ENDS_MS = "scm"
    # The hidden reserve (absent: none).
    RESERVE_PRICE = "rp"
    # Bid kinds (absent: none). The increment ladder "from:increment,..." (absent: `inc` at every price)
    # and the buy-now price, both fixed at creation.
    INCREMENTS = "incs"
    BUY_NOW_PRICE = "bn"
    # HIDDEN: the leader's maximum while above the price (written by `place_bid.lua` only). Never read
    # into an item view (`core_bidder.store` lists the fields it reads), so no answer or event shows it.
    LEADER_MAX = "lm"
    # The result, written once by `close_item.lua` (absent until the close).
    OUTCOME = "out"
    WINNER = "win"
    FINAL_PRICE = "fp"
    CLOSED_MS = "cat"


def partition_of(item_id: str, partitions: int) -> int:
    return zlib.crc32(item_id.encode()) % partitions


def partition_tag(partition: int) -> str:
    return f"{{p{partition}}}"


def outbox_key(partition: int) -> str:
    return f"{PREFIX}:{partition_tag(partition)}:outbox"


def dead_letter_key(partition: int) -> str:
    """Outbox entries the relay could not turn into events, moved aside once (see relay/pump.py)."""
    return f"{PREFIX}:{partition_tag(partition)}:outbox:dead"


def ends_key(partition: int) -> str:
    """The partition's open items scored by their effective end in ms: where the closer finds due items.

    Written by `create_item.lua`, moved by `place_bid.lua` on an extension, emptied by `close_item.lua`.
    """
    return f"{PREFIX}:{partition_tag(partition)}:ends"


def bidders_key(partition: int, item_id: str) -> str:
    """The item's bidders (a set, in the item's hash tag): who hears of its extensions and its close."""
    return f"{PREFIX}:{partition_tag(partition)}:bidders:{item_id}"


def notice_channel(bidder: str) -> str:
    """The channel of one bidder's notices (the relay publishes, fan-outs with a `/ws/me` subscribe)."""
    return NOTICE_CHANNEL_PREFIX + bidder


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
    ends: str
    channel: str
    idempotency_prefix: str
    # The bidders who had a bid accepted on the item (a set kept by the relay for the notices).
    bidders: str

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
        ends=ends_key(partition),
        channel=f"{base}:live:{item_id}",
        idempotency_prefix=f"{base}:idem:{item_id}:",
        bidders=bidders_key(partition, item_id),
    )
