"""The fan-out's one settings object (prefix `FANOUT_`), built in `main()` and passed down.

`partitions` and `sharded_pubsub` must match the bidder's (`BIDDER_PARTITIONS`, `BIDDER_SHARDED_PUBSUB`):
they decide which key holds an item's history and which channel (and Pub/Sub flavour) carries its events.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from auction_common.service_auth import ServiceAuth

ANY_ORIGIN = "*"


class FanoutSettings(BaseSettings, ServiceAuth):
    """Every knob of the fan-out service; the defaults suit one process on a laptop. How it calls the
    bidder (service token, TLS) is `ServiceAuth`."""

    model_config = SettingsConfigDict(env_prefix="FANOUT_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    # SO_REUSEPORT: several processes bind the same port and the kernel spreads connections over them,
    # so one machine's cores all serve viewers (each process keeps its own subscriptions).
    reuse_port: bool = True
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Cluster: history reads and sharded Pub/Sub go to the node owning the item's hash tag.
    # Implies sharded Pub/Sub, as BIDDER_REDIS_CLUSTER implies SPUBLISH on the bidder's side.
    redis_cluster: bool = False
    sharded_pubsub: bool = False
    partitions: int = Field(default=16, ge=1, le=16384)
    bidder_target: str = "127.0.0.1:50051"
    grpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # Origins a browser may connect from (exact match, `*` for any). Clients that send no Origin
    # header (not browsers, so not exposed to cross-site hijacking) are always accepted.
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8080", "http://localhost:8080"]
    )
    max_connections: int = Field(default=20_000, ge=1)
    # A viewer whose unsent data (in this process, past the kernel's socket buffer) exceeds this is
    # too slow: it is closed with 1013 instead of buffering without bound or slowing the others.
    send_buffer_bytes: int = Field(default=256 * 1024, ge=1024)
    # SO_SNDBUF of each viewer's socket (0: the kernel's autotuning, which may grow to megabytes per
    # socket). Bounding it bounds kernel memory per viewer and makes the slow-viewer bound bite sooner.
    socket_send_buffer_bytes: int = Field(default=64 * 1024, ge=0)
    ping_interval_seconds: float = Field(default=20.0, gt=0)
    ping_timeout_seconds: float = Field(default=20.0, gt=0)
    close_timeout_seconds: float = Field(default=5.0, gt=0)
    open_timeout_seconds: float = Field(default=10.0, gt=0)
    # Viewers only send pings, pongs and close frames: anything big is abuse.
    max_client_frame_bytes: int = Field(default=4096, ge=125)
    compression: bool = False
    # Per item, frames go out at most this often; events arriving in between share one batch frame.
    min_frame_interval_ms: float = Field(default=10.0, ge=0)
    # Share of the process one item's broadcasts may take: after a frame that took d to hand out, the
    # item's next frame waits until d / duty has passed (1.0: only `min_frame_interval_ms` applies).
    max_broadcast_duty: float = Field(default=0.5, gt=0, le=1)
    # Events per batch frame at most (a long catch-up goes out as several frames).
    batch_max_events: int = Field(default=500, ge=1)
    # History page size for replays and gap fills.
    history_page: int = Field(default=1000, ge=10)
    # How events reach the sockets: `library` is websockets' `broadcast()` (it builds the frame per
    # connection); `frame` builds the WebSocket frame once with the library's encoder and writes the
    # same bytes to every open connection (see `fanout.broadcast`).
    broadcast: Literal["library", "frame"] = "frame"
    # `/ws/me` (per-bidder notices) verifies bidders' HS256 tokens with the platform's secret, by the
    # edge's rules; unset, `/ws/me` answers 503 and nothing else changes.
    jwt_secret: SecretStr | None = Field(default=None, validation_alias="AUCTION_JWT_SECRET")
    max_token_lifetime_seconds: int = Field(default=14_400, ge=60)
    # A `/ws/me` client sending its token in the first message must do so this soon.
    auth_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long `/ws/me` waits for Redis to confirm the bidder's subscription before 1013.
    subscribe_timeout_seconds: float = Field(default=5.0, gt=0)
    health_interval_seconds: float = Field(default=1.0, gt=0)
    # Pin this process to one CPU (its number), as with one fan-out process per core on one machine;
    # unset: the scheduler places it. A CPU outside the process's allowed set is ignored with a warning.
    cpu: int | None = Field(default=None, ge=0)
    shutdown_timeout_seconds: float = Field(default=3.0, ge=0)
    log_level: str = "info"
    log_json: bool = False

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept `a,b` from the environment as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def any_origin(self) -> bool:
        return ANY_ORIGIN in self.allowed_origins
