"""Wires the bidder: Redis client, write strategy, gRPC server, health that follows Redis."""

from __future__ import annotations

import structlog

from auction.v1 import bidder_pb2, bidder_pb2_grpc, restore_pb2, restore_pb2_grpc
from auction_common.grpc_serving import add_health_and_reflection, platform_server
from auction_common.health_follow import HealthFollower, grpc_health_report
from auction_common.redis_client import AnyRedis, close_redis, make_redis
from auction_common.service_auth import ServiceTokenInterceptor, add_port
from core_bidder.admin import BidderAdminServicer
from core_bidder.closer import Closer
from core_bidder.servicer import BidderServicer
from core_bidder.settings import BidderSettings
from core_bidder.store import ItemStore
from core_bidder.watch_writer import WatchBidWriter
from core_bidder.writers import BidWriter, LuaBidWriter

log = structlog.get_logger(__name__)
SERVICE_NAME = bidder_pb2.DESCRIPTOR.services_by_name["BidderService"].full_name
ADMIN_SERVICE_NAME = restore_pb2.DESCRIPTOR.services_by_name["BidderAdminService"].full_name


def make_writer(redis: AnyRedis, settings: BidderSettings) -> BidWriter:
    if settings.strategy == "watch":
        return WatchBidWriter(redis, settings)
    return LuaBidWriter(redis, settings)


class BidderServer:
    """Owns the process's clients; `start` binds, `stop` drains with a grace period."""

    def __init__(self, settings: BidderSettings) -> None:
        self.settings = settings
        self.redis = make_redis(
            settings.redis_url, cluster=settings.redis_cluster, max_connections=settings.redis_max_connections
        )
        self.store = ItemStore(self.redis, settings, make_writer(self.redis, settings))
        token = settings.token
        # Only the platform's services may bid, create or read through the bidder when a token is set.
        self.server = platform_server([ServiceTokenInterceptor(token, (SERVICE_NAME,))] if token else [])
        self.health = add_health_and_reflection(self.server, SERVICE_NAME, ADMIN_SERVICE_NAME)
        self.port = 0
        self.closer = Closer(self.redis, self.store, settings)
        self._follower = HealthFollower(
            self.store.ping,
            grpc_health_report(self.health, SERVICE_NAME, ADMIN_SERVICE_NAME),
            settings.health_interval_seconds,
        )

    async def start(self) -> int:
        bidder_pb2_grpc.add_BidderServiceServicer_to_server(BidderServicer(self.store), self.server)
        restore_pb2_grpc.add_BidderAdminServiceServicer_to_server(
            BidderAdminServicer(self.redis, self.settings), self.server
        )
        self.port = add_port(self.server, f"{self.settings.host}:{self.settings.port}", self.settings)
        await self._follower.once()
        await self.server.start()
        self._follower.start()
        if self.settings.closer:
            self.closer.start()
        log.info(
            "bidder_listening",
            host=self.settings.host,
            port=self.port,
            strategy=self.settings.strategy,
            redis_cluster=self.settings.redis_cluster,
        )
        return self.port

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self._follower.stop()
        await self.closer.stop()
        await self.server.stop(self.settings.shutdown_grace_seconds)
        await self.store.drain()
        await close_redis(self.redis)
        log.info("bidder_stopped")
