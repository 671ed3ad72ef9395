"""Outbox entries to `MaximumAudit` records, without I/O: the only form in which a maximum leaves Redis.

AUDIT ONLY, never public. A bid's outbox entry names, in its field `m`, the maximum its bidder leads with
right after it (when above the amount); a leader's raise of their own maximum, which moves no price and
so makes no event, is an outbox-only `max_raised` entry. Each becomes one record for the archive, on the
audit route (`relay/route.py`), never part of an `auction.v1.Event`. Its id
"<item_id>.<seq>.<bid|raise>.<max_amount>" is unique: one bid has one maximum after it, and each raise
at one seq is higher than the one before.
"""

from __future__ import annotations

from typing import Any

from auction.v1 import audit_pb2
from auction_contract.events import EventKind
from auction_contract.wire_time import parse_ms, timestamp

KIND_NAMES = {audit_pb2.MAXIMUM_KIND_BID: "bid", audit_pb2.MAXIMUM_KIND_RAISE: "raise"}
# Money fits a signed 64-bit integer; an audit field longer than this is not a count of minor units.
_MAX_DIGITS = 18


def audit_id(record: audit_pb2.MaximumAudit) -> str:
    """The record's `Nats-Msg-Id` (the audit stream deduplicates re-publishes by it)."""
    return f"{record.item_id}.{record.seq}.{KIND_NAMES[record.kind]}.{record.max_amount}"


def audit_record(doc: dict[str, Any], leader_max: bytes | str | None) -> audit_pb2.MaximumAudit | None:
    """The audit record of a decoded entry, or None when it holds no maximum.

    A bid's `m` that cannot be right (not a decimal count, not above the amount) is dropped: an audit
    value never holds a bid's event back. A malformed `max_raised` entry raises (KeyError, TypeError,
    ValueError): it is nothing but its audit record.
    """
    kind = doc["type"]
    if kind == EventKind.MAX_RAISED:
        return _record(doc, audit_pb2.MAXIMUM_KIND_RAISE, _count(doc["max_amount"]), doc["raised_at"])
    if kind != EventKind.BID:
        return None
    top = _decimal(leader_max)
    if top is None or top <= doc["amount"]:
        return None
    return _record(doc, audit_pb2.MAXIMUM_KIND_BID, top, doc["placed_at"])


def _record(
    doc: dict[str, Any], kind: audit_pb2.MaximumKind.ValueType, top: int, at: str
) -> audit_pb2.MaximumAudit:
    seq, bidder = _count(doc["seq"]), doc["bidder"]
    if not isinstance(bidder, str) or not bidder or seq < 1 or top < 1:
        raise ValueError("a maximum needs its bidder, a seq and an amount above 0")
    return audit_pb2.MaximumAudit(
        item_id=doc["item_id"], seq=seq, bidder=bidder, max_amount=top, kind=kind, at=timestamp(parse_ms(at))
    )


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _decimal(raw: bytes | str | None) -> int | None:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return int(text) if text and text.isascii() and text.isdecimal() and len(text) <= _MAX_DIGITS else None
