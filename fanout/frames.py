"""The messages a viewer receives, built once per event (or per snapshot) and shared by every viewer.

Events are forwarded as the bidder's own bytes; a batch is those bytes joined inside
`{"type":"batch","events":[...]}`, so nothing is parsed and re-encoded on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from fanout.sequencing import Event

RESET = b'{"type":"reset"}'
_BATCH_HEAD = b'{"type":"batch","events":['
_BATCH_TAIL = b"]}"


def event_frames(events: Sequence[Event], max_per_frame: int) -> Iterator[bytes]:
    """One frame per event when alone, else batch frames of at most `max_per_frame` events each."""
    for start in range(0, len(events), max_per_frame):
        chunk = events[start : start + max_per_frame]
        if len(chunk) == 1:
            yield chunk[0].data
        else:
            yield _BATCH_HEAD + b",".join(e.data for e in chunk) + _BATCH_TAIL


def snapshot_frame(item: dict[str, Any]) -> bytes:
    """`{"type":"snapshot","item":{...},"seq":N}`, the item rendered as the REST edge renders it."""
    return orjson.dumps({"type": "snapshot", "item": item, "seq": item["seq"]})


def error_frame(code: str, detail: str) -> bytes:
    """`{"type":"error","code":...,"detail":...}` sent right before a close with a 4xxx/1011/1013 code."""
    return orjson.dumps({"type": "error", "code": code, "detail": detail})
