"""Item status between the domain (`ItemStatus`), protobuf (`item_pb2.ItemStatus`) and JSON names."""

from __future__ import annotations

from auction.v1 import item_pb2
from auction_contract.rules import ItemStatus

STATUS_TO_PROTO: dict[ItemStatus, item_pb2.ItemStatus.ValueType] = {
    ItemStatus.SCHEDULED: item_pb2.ITEM_STATUS_SCHEDULED,
    ItemStatus.OPEN: item_pb2.ITEM_STATUS_OPEN,
    ItemStatus.CLOSED: item_pb2.ITEM_STATUS_CLOSED,
}
STATUS_FROM_PROTO: dict[int, ItemStatus] = {v: k for k, v in STATUS_TO_PROTO.items()}
# JSON names (the contract's `status`) by protobuf value, and back.
STATUS_NAMES: dict[int, str] = {v: k.value for k, v in STATUS_TO_PROTO.items()}
STATUS_VALUES: dict[str, item_pb2.ItemStatus.ValueType] = {k.value: v for k, v in STATUS_TO_PROTO.items()}
