"""Item status and auction outcome between the domain, protobuf and JSON names: one map each."""

from __future__ import annotations

from auction.v1 import item_pb2
from auction_contract.events import Outcome
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

# The close's outcome. `Outcome` is a StrEnum, so its JSON names ("sold") look up as they are.
OUTCOME_TO_PROTO: dict[str, item_pb2.AuctionOutcome.ValueType] = {
    Outcome.SOLD: item_pb2.AUCTION_OUTCOME_SOLD,
    Outcome.NO_SALE: item_pb2.AUCTION_OUTCOME_NO_SALE,
}
OUTCOME_FROM_PROTO: dict[int, Outcome] = {v: Outcome(k) for k, v in OUTCOME_TO_PROTO.items()}
