"""The bidder's one settings object (prefix `BIDDER_`), built in `main()` and passed down."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from auction_common.service_auth import ServiceAuth

# The cap of `redis_wait_timeout_ms`: two WAITs (see there) and the steps' own time under the edge's 5 s.
MAX_WAIT_TIMEOUT_MS = 2_000


class BidderSettings(BaseSettings, ServiceAuth):
    """Every knob of the bidder; who may call it is `ServiceAuth` (`AUCTION_SERVICE_TOKEN`, TLS)."""

    model_config = SettingsConfigDict(env_prefix="BIDDER_", frozen=True)

    # With `redis_cluster`, any one node of the cluster (the client discovers the rest); database 0.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Cluster (cluster mode on, e.g. ElastiCache): a cluster-aware client, each Lua call and
    # read routed to the node owning the item's hash tag, and live events sent with SPUBLISH (implied:
    # see `publish_command`). Only the `lua` strategy: WATCH transactions are refused (see below).
    redis_cluster: bool = False
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
    # Use SPUBLISH (sharded Pub/Sub) for live events; always on with `redis_cluster`.
    sharded_pubsub: bool = False
    # Single server: the pool's bound (callers wait for a free connection). Cluster: per node, and a
    # call finding every connection of its node busy fails instead of waiting.
    redis_max_connections: int = Field(default=64, ge=1)
    # Answer a write step (a commit batch, a buy-now, a create, a close) only once this many replicas
    # have acknowledged it (Redis WAIT, one per batch); 0: off, the default. Single server only (see
    # `_check_cluster`); `core_bidder.replica_wait` says what an answer means then, and what a timeout does.
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    # How long each WAIT may take before the step is answered UNAVAILABLE (retryable). At most 2 s, under
    # half the edge's 5 s gRPC deadline (`EDGE_GRPC_TIMEOUT_SECONDS`): with keyed group commit a bid can
    # queue behind its item's batch in flight, so its answer may take two WAITs (that batch's and its own;
    # more only with over `max_batch` bids of one item queued ahead), and the caller must hear the
    # bidder's UNAVAILABLE, retryable with its key, not a DEADLINE_EXCEEDED whose outcome it cannot know.
    redis_wait_timeout_ms: int = Field(default=500, ge=1, le=MAX_WAIT_TIMEOUT_MS)
    health_interval_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no metrics listener
    log_level: str = "info"
    log_json: bool = False
    # The closer (`core_bidder.closer`): how often it looks for due auctions, how many per partition and
    # look, and whether this replica runs one (every replica may: the close step is idempotent).
    close_interval_seconds: float = Field(default=0.2, gt=0, le=10)
    close_batch: int = Field(default=500, ge=1, le=10_000)
    closer: bool = True
    # The shared secret of operator calls (`BidderAdminService`, e.g. the archive's rebuild); unset: off.
    admin_token: SecretStr | None = None

    @model_validator(mode="after")
    def _check_cluster(self) -> Self:
        """Refuse WATCH and WAIT on a cluster at startup rather than misbehave under load.

        redis-py 8.1's cluster pipeline runs every command of a transaction on a new thread with its own
        event loop while the bidder's loop waits (about 30 ms per WATCH transaction here), and refuses
        TIME in it, which the WATCH writer reads under WATCH. See `auction_common.redis_client`.

        WAIT counts the replicas of the node it is sent to, for the writes of its own connection: on a
        cluster it would have to go to each written slot's node, after a fence on that node's replication
        stream, on one connection; the cluster client hands out a connection per command, and cluster
        mode does not replicate PUBLISH (the fence, see `core_bidder.replica_wait`). Rather than a WAIT
        that silently proves nothing, the option is refused there.
        """
        if self.redis_cluster and self.strategy == "watch":
            raise ValueError(
                "BIDDER_STRATEGY=watch is not supported with BIDDER_REDIS_CLUSTER=true: redis-py's cluster "
                "transactions block the event loop and refuse TIME; use BIDDER_STRATEGY=lua"
            )
        if self.redis_cluster and self.redis_wait_replicas:
            raise ValueError(
                "BIDDER_REDIS_WAIT_REPLICAS is not supported with BIDDER_REDIS_CLUSTER=true: WAIT would "
                "have to reach each written slot's node on the connection that wrote; use a single "
                "primary with replicas, or BIDDER_REDIS_WAIT_REPLICAS=0"
            )
        return self

    @property
    def publish_command(self) -> str:
        """How live events are published: SPUBLISH on a cluster or when asked, else PUBLISH.

        The fan-out subscribes with SSUBSCRIBE whenever it runs in cluster mode, so the bidder must use
        SPUBLISH there too; a PUBLISH would reach every node over the cluster bus but no viewer.
        """
        return "SPUBLISH" if self.sharded_pubsub or self.redis_cluster else "PUBLISH"
