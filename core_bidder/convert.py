"""Domain shapes to protobuf messages: field by field, no reflection, since it runs per bid."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import item_pb2
from core_bidder.rules import ItemStatus, ItemView

_STATUS = {
    ItemStatus.SCHEDULED: item_pb2.ITEM_STATUS_SCHEDULED,
    ItemStatus.OPEN: item_pb2.ITEM_STATUS_OPEN,
    ItemStatus.CLOSED: item_pb2.ITEM_STATUS_CLOSED,
}
STATUS_FROM_PROTO = {v: k for k, v in _STATUS.items()}


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ms_of(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def item_message(view: ItemView, now_ms: int) -> item_pb2.Item:
    s, live = view.static, view.live
    item = item_pb2.Item(
        id=s.id,
        title=s.title,
        description=s.description,
        currency=s.currency,
        status=_STATUS[view.status(now_ms)],
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
