"""Ordering an item's events by `seq`, without I/O: the rules the feed and the joiners share.

The bidder gives every event of an item the next `seq` and publishes the same bytes it appends to the
item's history stream. A process's Pub/Sub connection delivers them in order, but it can lose some (a
Redis reconnect drops whatever was published meanwhile) and the history replay of a joining viewer
overlaps with the live feed. So everything that reaches a viewer goes through one rule: deliver
`last + 1` next, drop what is `<= last`, and hold what is beyond `last + 1` until the hole is filled
from the history stream (`missing()` says which range to read).
"""

from __future__ import annotations

from typing import NamedTuple

from auction_contract.events import seq_of, seq_of_stream_id

__all__ = ["Event", "Sequencer", "seq_of", "seq_of_stream_id"]


class Event(NamedTuple):
    """One event of one item: its `seq` and its JSON bytes exactly as the bidder serialized them."""

    seq: int
    data: bytes


class Sequencer:
    """Releases events strictly in `seq` order from `last + 1`, each once.

    `offer` takes events in any order (duplicates included); `take_ready` returns the contiguous run
    that can go out now; `missing` names the hole that blocks the rest, for a history read.
    """

    __slots__ = ("_held", "last")

    def __init__(self, last: int = 0) -> None:
        self.last = last
        self._held: dict[int, bytes] = {}

    def offer(self, event: Event) -> None:
        if event.seq > self.last:
            self._held.setdefault(event.seq, event.data)

    def take_ready(self) -> list[Event]:
        ready: list[Event] = []
        held = self._held
        nxt = self.last + 1
        while nxt in held:
            ready.append(Event(nxt, held.pop(nxt)))
            nxt += 1
        self.last = nxt - 1
        return ready

    def missing(self) -> tuple[int, int] | None:
        """The inclusive seq range to read from history before held events can go out, if any."""
        if not self._held:
            return None
        first_held = min(self._held)
        if first_held == self.last + 1:
            return None
        return self.last + 1, first_held - 1

    def skip_to(self, last: int) -> None:
        """Forget everything up to `last` (the history no longer holds the hole: viewers start over)."""
        self.last = max(self.last, last)
        self._held = {s: d for s, d in self._held.items() if s > self.last}

    @property
    def held(self) -> int:
        return len(self._held)
