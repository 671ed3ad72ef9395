"""Audit records to rows, without I/O: the hidden maximums, from their own stream into `maximum_audit`.

AUDIT ONLY, never public. The relay publishes each maximum as an `auction.v1.MaximumAudit` on the audit
subjects of stream `AUCTION_AUDIT` (never as an event): the maximum a bidder leads with after a bid, and
a leader's raise of their own maximum. Each is stored once, keyed by (item, seq, kind, maximum), in a
table that no public call reads (`archiver/history.py` names its columns); the rebuild reads it for the
leader's maximum. A message that is not a valid record -> `dead_letters`, like a bad event.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from archiver.events import AuditRow, DeadLetter, Incoming, Rows, utc
from auction.v1 import audit_pb2

KINDS = {audit_pb2.MAXIMUM_KIND_BID: "bid", audit_pb2.MAXIMUM_KIND_RAISE: "raise"}


def audit_rows_of(messages: list[Incoming]) -> Rows:
    rows = Rows()
    for message in messages:
        add_audit(rows, message)
    return rows


def add_audit(rows: Rows, message: Incoming) -> None:
    try:
        record = audit_pb2.MaximumAudit.FromString(message.data)
        problem = _problem(record)
        if problem is None:
            row = AuditRow(
                record.item_id, record.seq, KINDS[record.kind], record.bidder, record.max_amount,
                utc(record.at),
            )  # fmt: skip
            key = f"{row.item_id}.{row.seq}.{row.kind}.{row.max_amount}"
            if key not in rows.seen:
                rows.audits.append(row)
                rows.seen.add(key)
            return
    except (DecodeError, ValueError, OverflowError) as exc:  # not protobuf, or a time out of range
        problem = f"not a valid MaximumAudit: {exc!r}"
    rows.dead.append(DeadLetter(message.stream_seq, message.subject, message.data, problem))


def _problem(record: audit_pb2.MaximumAudit) -> str | None:
    """Why this record cannot be archived, or None."""
    if not record.item_id or record.seq < 1 or not record.bidder or record.max_amount < 1:
        return "audit record without item_id, seq, bidder or maximum"
    if record.kind not in KINDS or not record.HasField("at"):
        return "audit record without its kind or time"
    if "\x00" in record.item_id + record.bidder:
        return "text with NUL characters (PostgreSQL text cannot hold them)"
    return None
