"""The bidder's one settings object (prefix `BIDDER_`), built in `main()` and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BidderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIDDER_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    # How bids are written; both give the same outcomes, the experiments compare them.
    strategy: Literal["lua", "watch"] = "lua"
    # Outbox partitions; each is one Redis Cluster hash tag. Fixed for the life of a deployment.
    partitions: int = Field(default=16, ge=1, le=16384)
    # Events kept per item for viewers' resume (approximate cap of the history stream).
    history_maxlen: int = Field(default=10_000, ge=100)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    # Give up a WATCH transaction after this many conflicts (answers ABORTED-like UNAVAILABLE).
    watch_max_attempts: int = Field(default=10_000, ge=1)
    # Use SPUBLISH (sharded Pub/Sub) for live events, for Redis Cluster.
    sharded_pubsub: bool = False
    redis_max_connections: int = Field(default=64, ge=1)
    health_interval_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no metrics listener
    log_level: str = "info"
    log_json: bool = False
