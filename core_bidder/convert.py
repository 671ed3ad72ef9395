"""Domain shapes to protobuf messages: field by field, no reflection, since it runs per bid."""

from __future__ import annotations

from auction.v1 import item_pb2
from auction_contract.proto_status import STATUS_TO_PROTO
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
    return item
