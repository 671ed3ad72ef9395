"""Time on the wire: Unix milliseconds, `google.protobuf.Timestamp` and RFC 3339 UTC (`...T12:00:00.123Z`).

Every service formats and parses times here, so the contract's one shape (UTC, milliseconds, `Z`) is
written once. Formatting is memoised because an item's `starts_at`/`ends_at` repeat in every answer.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=16_384)
def _rfc3339(seconds: int, millis: int) -> str:
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def rfc3339_ms(ms: int) -> str:
    """`2026-11-23T12:00:00.123Z` for Unix milliseconds."""
    return _rfc3339(ms // 1000, ms % 1000)


def format_timestamp(ts: Timestamp) -> str:
    """`2026-11-23T12:00:00.123Z` (milliseconds, truncated)."""
    return _rfc3339(ts.seconds, ts.nanos // 1_000_000)


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ms_of(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def datetime_ms(moment: datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    return (moment - _EPOCH) // _MS


def parse_ms(text: str) -> int:
    """RFC 3339 with an offset to Unix milliseconds (ValueError without one)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return datetime_ms(moment)


def timestamp_from_datetime(value: datetime) -> Timestamp:
    """A protobuf timestamp for an aware datetime (any offset; stored as UTC)."""
    utc = value.astimezone(UTC)
    return Timestamp(seconds=calendar.timegm(utc.timetuple()), nanos=utc.microsecond * 1000)


def parse_timestamp(text: str) -> Timestamp:
    """The inverse of `format_timestamp` for any RFC 3339 time with an offset."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return timestamp_from_datetime(value)
