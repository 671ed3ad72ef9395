"""Wires one fan-out process: Redis (history + Pub/Sub), the bidder channel, feeds, the WebSocket server.

`/ws/items/{id}` goes to `Sessions` (item viewers), `/ws/me` to `NoticeSessions` (per-bidder notices, on
only when AUCTION_JWT_SECRET is set; they get their own plain Pub/Sub connection).

`start` binds (with SO_REUSEPORT, so sibling processes can share the port) and returns the port;
`stop` closes every viewer with 1012 (service restart: they reconnect elsewhere with `since`), gives
them `shutdown_timeout_seconds` to finish the closing handshake, then drops what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import structlog
from websockets.asyncio.server import Server, serve

from auction_common.health_follow import HealthFollower
from auction_common.jwt_verify import HS256Verifier
from auction_common.redis_client import AnyRedis, make_redis
from fanout.broadcast import broadcaster
from fanout.connection import ViewerConnection
from fanout.errors import CLOSE_SERVICE_RESTART
from fanout.history import History
from fanout.http import RequestGate, select_subprotocol
from fanout.me import NoticeSessions
from fanout.metrics import FanoutMetrics
from fanout.notices import NoticeHub
from fanout.pubsub import Subscriber, notice_subscriber_for, subscriber_for
from fanout.registry import FeedRegistry
from fanout.session import Sessions
from fanout.settings import FanoutSettings
from fanout.snapshots import SnapshotSource

log = structlog.get_logger(__name__)


class FanoutServer:
    def __init__(self, settings: FanoutSettings) -> None:
        if settings.compression and settings.broadcast == "frame":
            raise ValueError("FANOUT_BROADCAST=frame needs compression off (frames are shared as bytes)")
        self.settings = settings
        self.metrics = FanoutMetrics()
        self.redis: AnyRedis = make_redis(settings.redis_url, cluster=settings.redis_cluster)
        self.history = History(self.redis, settings.partitions, settings.history_page)
        self.subscriber = subscriber_for(self.redis, sharded=settings.sharded_pubsub, metrics=self.metrics)
        self.snapshots = SnapshotSource(
            settings.bidder_target, settings.grpc_timeout_seconds, self.metrics, auth=settings
        )
        self.feeds = FeedRegistry(
            settings, self.subscriber, self.history, broadcaster(settings.broadcast), self.metrics
        )
        self.sessions = Sessions(
            self.feeds, self.history, self.snapshots, self.metrics, settings.batch_max_events
        )
        self.gate = RequestGate(self.metrics, settings.max_connections, self._healthy)
        self.notice_subscriber: Subscriber | None = None
        self.notices: NoticeSessions | None = None
        if settings.jwt_secret is not None and settings.jwt_secret.get_secret_value():
            verifier = HS256Verifier(
                settings.jwt_secret.get_secret_value(),
                max_lifetime_seconds=settings.max_token_lifetime_seconds,
            )
            self.notice_subscriber = notice_subscriber_for(self.redis, metrics=self.metrics)
            hub = NoticeHub(self.notice_subscriber, self.metrics, settings.subscribe_timeout_seconds)
            self.notices = NoticeSessions(verifier, hub, self.metrics, settings.auth_timeout_seconds)
            self.gate.notices_enabled = True
        self.server: Server | None = None
        self.port = 0
        self._redis_ok = False
        self._follower = HealthFollower(
            self._ping_redis, self._redis_answered, settings.health_interval_seconds
        )

    def _healthy(self) -> bool:
        notices_ok = self.notice_subscriber is None or self.notice_subscriber.healthy
        return self._redis_ok and self.subscriber.healthy and notices_ok

    async def _serve(self, viewer: ViewerConnection) -> None:
        """The websockets handler: the gate marked `/ws/me` connections (only when notices are on)."""
        if viewer.notices and self.notices is not None:
            await self.notices.serve(viewer)
        else:
            await self.sessions.serve(viewer)

    async def start(self) -> int:
        s = self.settings
        await self._follower.once()
        await self.subscriber.start()
        if self.notice_subscriber is not None:
            await self.notice_subscriber.start()
        origins = None if s.any_origin else [None, *s.allowed_origins]
        self.server = await serve(
            self._serve,  # type: ignore[arg-type]  # our connection class, see create_connection
            s.host,
            s.port,
            origins=origins,  # type: ignore[arg-type]  # plain strings are valid Origin values
            compression="deflate" if s.compression else None,
            process_request=self.gate,  # type: ignore[arg-type]
            select_subprotocol=select_subprotocol,  # type: ignore[arg-type]
            server_header=None,
            open_timeout=s.open_timeout_seconds,
            ping_interval=s.ping_interval_seconds,
            ping_timeout=s.ping_timeout_seconds,
            close_timeout=s.close_timeout_seconds,
            max_size=s.max_client_frame_bytes,
            max_queue=4,
            write_limit=s.send_buffer_bytes,
            create_connection=ViewerConnection.configured(s.socket_send_buffer_bytes),
            logger=logging.getLogger("fanout.websockets"),
            reuse_port=s.reuse_port,
            backlog=4096,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._follower.start()
        log.info("fanout_listening", host=s.host, port=self.port, broadcast=s.broadcast)
        return self.port

    async def stop(self) -> None:
        self.gate.accepting = False
        if self.server is not None:
            self.server.close(code=CLOSE_SERVICE_RESTART, reason="service restart")
            try:
                async with asyncio.timeout(self.settings.shutdown_timeout_seconds):
                    await self.server.wait_closed()
            except TimeoutError:
                for connection in list(self.server.all_connections):
                    connection.transport.abort()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self.server.wait_closed()
        await self._follower.stop()
        await self.feeds.close()
        await self.subscriber.stop()
        if self.notice_subscriber is not None:
            await self.notice_subscriber.stop()
        await self.snapshots.close()
        await self.redis.aclose()
        log.info("fanout_stopped")

    async def _ping_redis(self) -> bool:
        return bool(await self.redis.ping())

    async def _redis_answered(self, ok: bool) -> None:
        self._redis_ok = ok
