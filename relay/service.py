"""Wires the relay: Redis, NATS (streams ensured), consumer groups, the pump, the monitor, the ops server.

`start` returns once the relay is relaying (so /healthz answers 200); `stop` lets the round in progress
finish, then closes NATS, Redis and the ops server. Entries not yet removed stay in the outbox, pending under
this consumer, for the next start (same `RELAY_CONSUMER`) or another instance's claim.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from auction_common.nats_connection import connect_nats
from auction_common.redis_client import make_redis
from relay.monitor import OutboxMonitor
from relay.notices import NoticeSender
from relay.ops_http import OpsServer
from relay.outbox import DEAD_LETTER_PATTERN, Outbox
from relay.publisher import BatchPublisher, ensure_streams
from relay.pump import OutboxPump
from relay.replica_wait import ReplicaWait
from relay.settings import RelaySettings

log = structlog.get_logger(__name__)


class RelayService:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.redis = make_redis(
            settings.redis_url, cluster=settings.redis_cluster, socket_timeout=5, socket_connect_timeout=2
        )
        self.outbox = Outbox(
            self.redis, settings.partitions, settings.group, settings.consumer, settings.batch_size
        )
        self.monitor = OutboxMonitor(
            self.outbox, settings.outbox_alert_entries, settings.monitor_interval_seconds
        )
        self.ops = OpsServer(settings.host, settings.port, self._live, self._problems)
        self.port = 0
        self._publisher: BatchPublisher | None = None
        self._stop = asyncio.Event()
        self._monitor_task: asyncio.Task[None] | None = None
        self._pump_task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Serve probes at once (not live yet), then connect and start relaying; returns the ops port."""
        settings = self.settings
        self.port = await self.ops.start()
        self._monitor_task = asyncio.create_task(self.monitor.run(), name="outbox-monitor")
        await self._until_redis_ready()
        nc = await connect_nats(
            settings.nats_url,
            name=f"relay-{settings.consumer}",
            ping_interval=settings.nats_ping_interval_seconds,
            connect_timeout=settings.nats_connect_timeout_seconds,
            retry_max=settings.retry_max_seconds,
        )
        await ensure_streams(nc.jetstream(), settings)
        self._publisher = BatchPublisher(nc, settings.ack_timeout_seconds)
        await self._publisher.start()
        notices = NoticeSender(self.redis) if settings.notices else None
        wait = ReplicaWait.of(settings, self.redis)
        pump = OutboxPump(settings, self.outbox, self._publisher, notices, wait)
        self._pump_task = asyncio.create_task(pump.run(self._stop), name="outbox-pump")
        log.info(
            "relay_started",
            consumer=settings.consumer,
            partitions=settings.partitions,
            stream=settings.stream,
            audit_stream=settings.audit_stream,
            port=self.port,
        )
        return self.port

    async def stop(self) -> None:
        self._stop.set()
        if self._pump_task is not None:
            try:
                await asyncio.wait_for(self._pump_task, timeout=self.settings.shutdown_grace_seconds)
            except TimeoutError:
                log.warning("relay_stop_timeout")  # cancelled; unremoved entries are simply retried
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
        if self._publisher is not None:
            await self._publisher.close()
        await self.ops.stop()
        await self.redis.aclose()
        log.info("relay_stopped")

    async def _until_redis_ready(self) -> None:
        delay = 0.1
        while True:
            try:
                await self.outbox.ensure_groups()
                return
            except Exception as exc:
                log.warning("redis_not_ready", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_seconds)

    def _live(self) -> bool:
        return self._pump_task is not None and not self._pump_task.done()

    def _problems(self) -> list[str]:
        problems: list[str] = []
        connected = self._publisher is not None and self._publisher.connected
        if not self._live():
            problems.append("not relaying yet")
        if not connected:
            problems.append("NATS is not connected")
        state = self.monitor.state
        if not state.redis_ok:
            problems.append("Redis is not reachable")
        if state.over_bound:
            bound = self.settings.outbox_alert_entries
            problems.append(f"outbox holds {state.entries} entries, above the bound of {bound}")
        if state.dead_letters and self.settings.dead_letters_fail_readiness:
            problems.append(
                f"{state.dead_letters} outbox entries could not become events and were set aside in "
                f"{DEAD_LETTER_PATTERN}: inspect them (XRANGE), then delete the stream to clear this"
            )
        return problems
