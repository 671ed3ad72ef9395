"""Restoring an item's live state from its archived rows: the bidder's side of the rebuild.

The archive's rebuild command (`python -m archiver.rebuild`) reads PostgreSQL and sends each item here
(`BidderAdminService.RestoreItem`), so the bidder stays the only process that writes auction state.
Per item one atomic Lua call (`lua/rebuild_item.lua`) writes the item hash (the fields the bid script
uses), the partition index entry and the event history stream. One Lua call rather than WATCH/MULTI/EXEC:
the same on a single server and on Redis Cluster (every key carries the item's hash tag), where redis-py's
cluster transactions would run each of thousands of history entries on a thread of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auction_contract.redis_layout import item_keys
from auction_contract.rules import BIDDER_PATTERN, MAX_AMOUNT
from auction_contract.wire_time import ms_of
from core_bidder.errors import InvalidArgument, ItemNotFound
from core_bidder.restore_state import ArchivedBid, ArchivedItem, LiveState, live_state
from core_bidder.scripts import register
from core_bidder.validation import check_item_id, check_new_item, check_times

if TYPE_CHECKING:
    from auction.v1 import restore_pb2
    from auction_common.redis_client import AnyRedis

# The Lua reply, which is also `RestoreResult` without its prefix.
RESULTS = ("rebuilt", "exists", "ahead")


def archived_item(message: restore_pb2.ArchivedItem) -> ArchivedItem:
    """The request's item, checked like a new item (the archive only ever held valid ones)."""
    if not check_item_id(message.item_id):
        raise ItemNotFound(message.item_id)
    check_new_item(
        message.title, message.description, message.currency, message.starting_price, message.min_increment
    )
    check_times(ms_of(message.starts_at), ms_of(message.ends_at))
    return ArchivedItem(
        message.item_id, message.title, message.description, message.currency, message.starting_price,
        message.min_increment, ms_of(message.starts_at), ms_of(message.ends_at), ms_of(message.created_at),
    )  # fmt: skip


def archived_bids(messages: list[restore_pb2.ArchivedBid], bid_count: int) -> list[ArchivedBid]:
    """The request's bids: ascending seqs after the created event (1), valid bidders and amounts."""
    bids = [ArchivedBid(m.seq, m.bidder, m.amount, ms_of(m.placed_at), m.min_next_bid) for m in messages]
    if bid_count < len(bids):
        raise InvalidArgument("bid_count is smaller than the number of bids sent")
    previous = 1
    for bid in bids:
        if bid.seq <= previous:
            raise InvalidArgument("recent_bids must be in ascending seq order, after seq 1")
        if not BIDDER_PATTERN.fullmatch(bid.bidder) or not 0 < bid.amount <= MAX_AMOUNT:
            raise InvalidArgument(f"bid seq {bid.seq} has an invalid bidder or amount")
        previous = bid.seq
    return bids


async def restore_item(
    redis: AnyRedis,
    partitions: int,
    history_keep: int,
    item: ArchivedItem,
    bid_count: int,
    bids: list[ArchivedBid],
    *,
    force: bool,
) -> tuple[str, LiveState]:
    """Write the item's live state atomically unless Redis is ahead; the outcome (`RESULTS`) and state."""
    state = live_state(item, bid_count, bids[-history_keep:] if history_keep else [])
    keys = item_keys(item.item_id, partitions)
    args: list[str | int] = [
        "1" if force else "0", item.item_id, item.created_ms, state.seq, len(state.fields),
    ]  # fmt: skip
    for name, value in state.fields.items():
        args += (name, value)
    for entry_id, event in state.events:
        args += (entry_id, event)
    result = await register(redis, "rebuild_item")(keys=[keys.item, keys.events, keys.index], args=args)
    return (result.decode() if isinstance(result, bytes) else str(result)), state
