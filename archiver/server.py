"""Wires the archiver: migrations, the history gRPC server (health follows PostgreSQL), the ingest loop.

Start order: the schema first (retrying while PostgreSQL is away; a changed migration stops the start),
then the gRPC server, then NATS in the background, so history is served even while NATS is down; there
two ingest loops run side by side, the events and the audit records (each with its own writer).
Stop order: stop fetching and finish the batch in hand (commit, then ack), drain NATS, stop gRPC with a
grace period, close the database connections.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from nats.aio.client import Client as NatsClient

from archiver import migrations
from archiver.consumer import EventConsumer, audit_source, event_source
from archiver.history import HistoryReader
from archiver.history_service import HistoryServicer
from archiver.settings import ArchiverSettings
from archiver.writer import ArchiveWriter
from auction.v1 import history_pb2, history_pb2_grpc
from auction_common.grpc_serving import add_health_and_reflection, platform_server
from auction_common.health_follow import HealthFollower, grpc_health_report
from auction_common.nats_connection import connect_nats
from auction_common.service_auth import add_port

log = structlog.get_logger(__name__)
SERVICE_NAME = history_pb2.DESCRIPTOR.services_by_name["HistoryService"].full_name


class ArchiverServer:
    def __init__(self, settings: ArchiverSettings) -> None:
        self.settings = settings
        self.reader = HistoryReader(
            settings.postgres_dsn,
            settings.read_pool_size,
            settings.statement_timeout_seconds,
            settings.connect_timeout_seconds,
        )
        self.writer = ArchiveWriter(
            settings.postgres_dsn, settings.statement_timeout_seconds, settings.connect_timeout_seconds
        )
        # The audit loop's own connection: one asyncpg connection runs one transaction at a time.
        self.audit_writer = ArchiveWriter(
            settings.postgres_dsn, settings.statement_timeout_seconds, settings.connect_timeout_seconds
        )
        self.server = platform_server()
        self.health = add_health_and_reflection(self.server, SERVICE_NAME)
        self.port = 0
        self._stop = asyncio.Event()
        self._nc: NatsClient | None = None
        self._ingest: asyncio.Task[None] | None = None
        self._follower = HealthFollower(
            self.reader.ping,
            grpc_health_report(self.health, SERVICE_NAME),
            settings.health_interval_seconds,
            # The reader bounds its own statements; the follower only backstops a hung pool.
            timeout_seconds=settings.statement_timeout_seconds + settings.connect_timeout_seconds,
        )

    async def start(self) -> int:
        await self.reader.open()
        await self._migrate()
        history_pb2_grpc.add_HistoryServiceServicer_to_server(HistoryServicer(self.reader), self.server)
        self.port = add_port(self.server, f"{self.settings.host}:{self.settings.port}", self.settings)
        await self._follower.once()
        await self.server.start()
        self._follower.start()
        self._ingest = asyncio.create_task(self._run_ingest(), name="ingest")
        log.info("archiver_listening", host=self.settings.host, port=self.port)
        return self.port

    async def stop(self) -> None:
        self._stop.set()
        if self._ingest is not None:
            try:
                # The consumer itself gives up a failing batch after the grace; this is the backstop.
                await asyncio.wait_for(self._ingest, timeout=self.settings.shutdown_grace_seconds + 10)
            except TimeoutError:
                log.warning("ingest_stop_timeout")
        if self._nc is not None:
            # A flush is a round trip, so the last acks have reached the server before we close. (Not
            # drain(): it waits on the pull subscription's queue, which fetch() never marks done.)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.flush(), timeout=5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=5)
        await self.health.enter_graceful_shutdown()
        await self._follower.stop()
        await self.server.stop(self.settings.shutdown_grace_seconds)
        await self.writer.close()
        await self.audit_writer.close()
        await self.reader.close()
        log.info("archiver_stopped")

    async def _migrate(self) -> None:
        """Apply the schema, waiting for PostgreSQL as long as it takes (a bad migration raises)."""
        wanted = migrations.load()
        delay = self.settings.retry_initial_seconds
        while True:
            try:
                conn = await asyncpg.connect(
                    self.settings.postgres_dsn, timeout=self.settings.connect_timeout_seconds
                )
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("postgres_not_ready", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_seconds)
                continue
            try:
                await migrations.migrate(conn, wanted)
                return
            finally:
                await conn.close()

    async def _run_ingest(self) -> None:
        settings = self.settings
        self._nc = await connect_nats(
            settings.nats_url,
            name=f"archiver-{settings.durable}",
            ping_interval=settings.nats_ping_interval_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            retry_max=settings.retry_max_seconds,
        )
        loops = [
            EventConsumer(settings, self._nc, self.writer, event_source(settings)),
            EventConsumer(settings, self._nc, self.audit_writer, audit_source(settings)),
        ]
        await asyncio.gather(*(self._ingest_from(consumer) for consumer in loops))

    async def _ingest_from(self, consumer: EventConsumer) -> None:
        if await consumer.subscribe(self._stop):
            await consumer.run(self._stop)
