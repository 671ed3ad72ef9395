"""The messages a viewer receives, built once per event (or per snapshot) and shared by every viewer.

Events are forwarded as the bidder's own bytes; a batch is those bytes joined inside
`{"type":"batch","events":[...]}`, so nothing is parsed and re-encoded on the way out. Every frame also
carries `server_time` (RFC 3339, when it was built), so a viewer can correct a countdown for its own
clock: a lone event gets the member spliced in before its closing brace, a batch and a snapshot carry
it beside their members.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from auction_contract.wire_time import rfc3339_ms
from fanout.sequencing import Event

RESET = b'{"type":"reset"}'
_BATCH_HEAD = b'{"type":"batch","events":['
_TIME_HEAD = b',"server_time":"'


def server_time() -> str:
    return rfc3339_ms(time.time_ns() // 1_000_000)


def event_frames(events: Sequence[Event], max_per_frame: int) -> Iterator[bytes]:
    """One frame per event when alone, else batch frames of at most `max_per_frame` events each."""
    stamp = _TIME_HEAD + server_time().encode() + b'"}'
    for start in range(0, len(events), max_per_frame):
        chunk = events[start : start + max_per_frame]
        if len(chunk) == 1:
            yield chunk[0].data[:-1] + stamp  # the bidder's JSON object: its last byte is its closing brace
        else:
            yield _BATCH_HEAD + b",".join(e.data for e in chunk) + b"]" + stamp


def snapshot_frame(item: dict[str, Any]) -> bytes:
    """`{"type":"snapshot","item":{...},"seq":N,"server_time":...}`, the item as the REST edge renders it."""
    return orjson.dumps({"type": "snapshot", "item": item, "seq": item["seq"], "server_time": server_time()})


def error_frame(code: str, detail: str) -> bytes:
    """`{"type":"error","code":...,"detail":...}` sent right before a close with a 4xxx/1011/1013 code."""
    return orjson.dumps({"type": "error", "code": code, "detail": detail})


def notice_frame(notice: bytes) -> bytes:
    """A per-bidder notice (the relay's JSON object) with `server_time` spliced in before its last brace."""
    return notice[:-1] + _TIME_HEAD + server_time().encode() + b'"}'


def ready_frame(bidder: str) -> bytes:
    """`{"type":"ready","bidder":...}`: `/ws/me` is authenticated and subscribed; notices follow."""
    return orjson.dumps({"type": "ready", "bidder": bidder, "server_time": server_time()})
