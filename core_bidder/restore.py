"""Restoring an item's live state from its archived rows: the bidder's side of the rebuild.

The archive's rebuild command (`python -m archiver.rebuild`) reads PostgreSQL and sends each item here
(`BidderAdminService.RestoreItem`), so the bidder stays the only process that writes auction state.
Per item one atomic Lua call (`lua/rebuild_item.lua`) writes the item hash (the fields the bid and close
scripts use), the partition index entry, the partition ends entry (an open item's effective end, so the
closer finds it; a closed item has none) and the event history stream. One Lua call rather than
WATCH/MULTI/EXEC: the same on a single server and on Redis Cluster (every key carries the item's hash
tag), where redis-py's cluster transactions would run each of thousands of history entries on a thread
of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auction_contract.events import Outcome
from auction_contract.proto_status import OUTCOME_FROM_PROTO
from auction_contract.redis_layout import item_keys
from auction_contract.rules import BIDDER_PATTERN, MAX_AMOUNT, TIME_WINDOW_TEXT, time_in_window
from auction_contract.wire_time import ms_of
from core_bidder.errors import InvalidArgument, ItemNotFound
from core_bidder.restore_state import (
    ArchivedBid,
    ArchivedClose,
    ArchivedExtension,
    ArchivedItem,
    LiveState,
    live_state,
)
from core_bidder.scripts import register
from core_bidder.validation import (
    bid_kinds,
    check_item_id,
    check_new_item,
    check_reserve,
    check_times,
    soft_close_rule,
)

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
    ends_ms = ms_of(message.ends_at)
    created_ends_ms = ms_of(message.created_ends_at) if message.HasField("created_ends_at") else ends_ms
    check_times(ms_of(message.starts_at), ends_ms)
    check_times(None, created_ends_ms)
    if created_ends_ms > ends_ms:
        raise InvalidArgument("ends_at must not be before created_ends_at: extensions never move it back")
    rule = None
    if message.HasField("soft_close"):
        soft = message.soft_close
        cap = ms_of(soft.max_ends_at) if soft.HasField("max_ends_at") else None
        rule = soft_close_rule(soft.window_seconds, soft.extension_seconds, cap, created_ends_ms)
        if cap is not None and ends_ms > cap:
            raise InvalidArgument("ends_at must not be after soft_close.max_ends_at")
    elif created_ends_ms != ends_ms:
        raise InvalidArgument("an item without soft_close is never extended: ends_at is created_ends_at")
    reserve = message.reserve_price if message.HasField("reserve_price") else None
    check_reserve(reserve, message.starting_price)
    buy_now = message.buy_now_price if message.HasField("buy_now_price") else None
    steps = tuple((step.from_price, step.increment) for step in message.increments)
    ladder, _ = bid_kinds(steps, message.min_increment, message.starting_price, reserve, buy_now)
    return ArchivedItem(
        message.item_id, message.title, message.description, message.currency, message.starting_price,
        message.min_increment, ms_of(message.starts_at), ends_ms, ms_of(message.created_at),
        rule, reserve, created_ends_ms, ladder, buy_now,
    )  # fmt: skip


def archived_bids(messages: Sequence[restore_pb2.ArchivedBid], bid_count: int) -> list[ArchivedBid]:
    """The request's bids: ascending seqs after the created event (1), valid bidders and amounts."""
    bids = [
        ArchivedBid(m.seq, m.bidder, m.amount, ms_of(m.placed_at), m.min_next_bid, proxy=m.proxy)
        for m in messages
    ]
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


def archived_extensions(
    messages: Sequence[restore_pb2.ArchivedExtension], item: ArchivedItem, bids: Sequence[ArchivedBid]
) -> list[ArchivedExtension]:
    """The request's extensions: ascending seqs apart from the bids', ends moving forward only."""
    extensions = [ArchivedExtension(m.seq, ms_of(m.ends_at), ms_of(m.previous_ends_at)) for m in messages]
    if extensions and item.soft_close is None:
        raise InvalidArgument("recent_extensions for an item without soft_close")
    bid_seqs = {bid.seq for bid in bids}
    previous = 1
    for extension in extensions:
        if extension.seq <= previous:
            raise InvalidArgument("recent_extensions must be in ascending seq order, after seq 1")
        if extension.seq in bid_seqs:
            raise InvalidArgument(f"seq {extension.seq} is both a bid and an extension")
        if not extension.previous_ends_ms <= extension.ends_ms <= item.ends_ms:
            raise InvalidArgument(f"extension seq {extension.seq} moves the end back or past ends_at")
        if not time_in_window(extension.previous_ends_ms):
            raise InvalidArgument(f"extension seq {extension.seq}: times must be {TIME_WINDOW_TEXT}")
        previous = extension.seq
    return extensions


def archived_close(
    message: restore_pb2.RestoreItemRequest,
    bids: Sequence[ArchivedBid],
    extensions: Sequence[ArchivedExtension],
) -> ArchivedClose | None:
    """The request's close (`item.result` with `closed`): the item's last event, or None when open."""
    if message.item.HasField("result") != message.HasField("closed"):
        raise InvalidArgument("item.result and closed come together (a closed item) or not at all")
    if not message.HasField("closed"):
        return None
    result, closed = message.item.result, message.closed
    outcome = OUTCOME_FROM_PROTO.get(result.outcome)
    if outcome is None:
        raise InvalidArgument("item.result.outcome must be sold or no_sale")
    winner = result.winner if result.HasField("winner") else None
    price = result.final_price if result.HasField("final_price") else None
    if outcome is Outcome.SOLD:
        if (
            winner is None
            or not BIDDER_PATTERN.fullmatch(winner)
            or price is None
            or not 0 < price <= MAX_AMOUNT
        ):
            raise InvalidArgument("a sale needs a valid winner and final price")
    elif winner is not None or price is not None:
        raise InvalidArgument("no sale has neither a winner nor a final price")
    newest = max([b.seq for b in bids] + [e.seq for e in extensions] + [1])
    if closed.seq <= newest:
        raise InvalidArgument("closed.seq must be after every other event: the close is the last event")
    if closed.bid_count < 0 or not time_in_window(ms_of(result.closed_at)):
        raise InvalidArgument(f"closed.bid_count must be >= 0 and closed_at {TIME_WINDOW_TEXT}")
    return ArchivedClose(closed.seq, outcome, winner, price, closed.bid_count, ms_of(result.closed_at))


def archived_leader_max(message: restore_pb2.RestoreItemRequest, bids: Sequence[ArchivedBid]) -> int | None:
    """The request's hidden leader maximum: above the newest bid's amount (the price), or None."""
    if not message.HasField("leader_max"):
        return None
    if not bids:
        raise InvalidArgument("leader_max without a bid: nobody leads")
    if not bids[-1].amount < message.leader_max <= MAX_AMOUNT:
        raise InvalidArgument(f"leader_max must be above the newest bid's amount and at most {MAX_AMOUNT}")
    return message.leader_max


async def restore_item(
    redis: AnyRedis,
    partitions: int,
    history_keep: int,
    item: ArchivedItem,
    bid_count: int,
    bids: list[ArchivedBid],
    *,
    force: bool,
    extensions: Sequence[ArchivedExtension] = (),
    closed: ArchivedClose | None = None,
    leader_max: int | None = None,
) -> tuple[str, LiveState]:
    """Write the item's live state atomically unless Redis is ahead; the outcome (`RESULTS`) and state."""
    state = live_state(
        item, bid_count, bids, extensions=extensions, closed=closed, history_keep=max(history_keep, 0),
        leader_max=leader_max,
    )  # fmt: skip
    keys = item_keys(item.item_id, partitions)
    args: list[str | int] = [
        "1" if force else "0", item.item_id, item.created_ms, state.seq,
        "" if state.closed else state.ends_ms, len(state.fields),
    ]  # fmt: skip
    for name, value in state.fields.items():
        args += (name, value)
    for entry_id, event in state.events:
        args += (entry_id, event)
    script = register(redis, "rebuild_item")
    result = await script(keys=[keys.item, keys.events, keys.index, keys.ends], args=args)
    return (result.decode() if isinstance(result, bytes) else str(result)), state
