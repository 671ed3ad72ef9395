"""Outbox depth and age as metrics, and the size bound that turns readiness off and raises an alert.

The outbox is the only place events wait while NATS (or the relay) is down, and it lives in Redis
memory. The bound (`RELAY_OUTBOX_ALERT_ENTRIES`) is meant to sit far below what Redis can hold, so the
alert (an error log line, repeated while it lasts, and a failing /readyz) comes with time to act.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from redis.exceptions import RedisError

from relay import metrics

if TYPE_CHECKING:
    from relay.outbox import Outbox, PartitionDepth

log = structlog.get_logger(__name__)
REPEAT_ALERT_SECONDS = 30.0


@dataclass
class OutboxState:
    """What the monitor saw last; read by /readyz."""

    redis_ok: bool = False
    entries: int = 0
    oldest_age_seconds: float = 0.0
    over_bound: bool = False
    dead_letters: int = 0
    checked_at: float = field(default=0.0)


class OutboxMonitor:
    def __init__(self, outbox: Outbox, bound: int, interval: float) -> None:
        self._outbox = outbox
        self._bound = bound
        self._interval = interval
        self.state = OutboxState()
        self._last_alert = 0.0

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval)

    async def check(self) -> OutboxState:
        try:
            depths = await self._outbox.depth()
        except RedisError as exc:
            if self.state.redis_ok:
                log.warning("outbox_depth_unavailable", error=repr(exc))
            self.state.redis_ok = False
            return self.state
        self._record(depths)
        return self.state

    def _record(self, depths: list[PartitionDepth]) -> None:
        state = self.state
        state.redis_ok = True
        state.entries = sum(d.entries for d in depths)
        state.oldest_age_seconds = max((d.oldest_age_seconds for d in depths), default=0.0)
        state.checked_at = time.monotonic()
        for d in depths:
            metrics.OUTBOX_DEPTH.labels(str(d.partition)).set(d.entries)
            metrics.OUTBOX_AGE.labels(str(d.partition)).set(d.oldest_age_seconds)
        metrics.OUTBOX_TOTAL.set(state.entries)
        state.dead_letters = sum(d.dead_letters for d in depths)
        metrics.DEAD_LETTERS.set(state.dead_letters)
        over = state.entries > self._bound
        now = time.monotonic()
        if over and (not state.over_bound or now - self._last_alert >= REPEAT_ALERT_SECONDS):
            self._last_alert = now
            log.error(
                "outbox_over_bound",
                entries=state.entries,
                bound=self._bound,
                oldest_age_seconds=round(state.oldest_age_seconds, 1),
            )
        elif state.over_bound and not over:
            log.info("outbox_back_under_bound", entries=state.entries, bound=self._bound)
        state.over_bound = over
        metrics.OUTBOX_OVER_BOUND.set(1 if over else 0)
