"""Domain shapes to protobuf messages: field by field, no reflection, since it runs per bid."""

from __future__ import annotations

from auction.v1 import item_pb2
from auction_contract.proto_status import OUTCOME_TO_PROTO, STATUS_TO_PROTO
from auction_contract.wire_time import timestamp
from core_bidder.rules import ItemView


def item_message(view: ItemView, now_ms: int) -> item_pb2.Item:
    s, live = view.static, view.live
    item = item_pb2.Item(
        id=s.id,
        title=s.title,
        description=s.description,
        currency=s.currency,
        status=STATUS_TO_PROTO[view.status(now_ms)],
        starting_price=s.starting_price,
        min_increment=s.min_increment,
        bid_count=live.bid_count,
        min_next_bid=view.min_next_bid,
        starts_at=timestamp(s.starts_ms),
        ends_at=timestamp(live.ends_ms),
        seq=live.seq,
        created_at=timestamp(s.created_ms),
    )
    if live.current_price is not None:
        item.current_price = live.current_price
    if live.highest_bidder is not None:
        item.highest_bidder = live.highest_bidder
    rule = s.soft_close
    if rule is not None:
        item.soft_close.window_seconds = rule.window_ms // 1000
        item.soft_close.extension_seconds = rule.extension_ms // 1000
        if rule.max_ends_ms is not None:
            item.soft_close.max_ends_at.CopyFrom(timestamp(rule.max_ends_ms))
    if s.reserve_price is not None:
        # The bidder's callers are the platform's services; the edge shows the reserve to admins only.
        item.reserve_price = s.reserve_price
        item.reserve_met = bool(view.reserve_met)
    if s.increments is not None:
        item.increments.extend(
            item_pb2.IncrementStep(from_price=start, increment=step) for start, step in s.increments
        )
    if s.buy_now_price is not None:
        item.buy_now_price = s.buy_now_price
    result = live.result
    if result is not None:
        item.result.outcome = OUTCOME_TO_PROTO[result.outcome]
        item.result.closed_at.CopyFrom(timestamp(result.closed_ms))
        if result.winner is not None:
            item.result.winner = result.winner
        if result.final_price is not None:
            item.result.final_price = result.final_price
    return item
