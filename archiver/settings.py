"""The archiver's one settings object (prefix `ARCHIVER_`), built in `main()` and passed down.

The rebuild command (`python -m archiver.rebuild`) is part of the archiver and reads the same object;
only it uses `bidder_target`, `bidder_admin_token` and `history_maxlen`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from auction_common.nats_connection import NatsUrls
from auction_common.service_auth import ServiceAuth


class ArchiverSettings(BaseSettings, ServiceAuth):
    """Every knob of the archiver and its rebuild command (`ServiceAuth`: TLS to the bidder)."""

    model_config = SettingsConfigDict(env_prefix="ARCHIVER_", frozen=True)

    postgres_dsn: str = "postgresql://auction@127.0.0.1:5432/auction"
    # One URL or several, comma-separated (the nodes of a NATS cluster): the client starts with any
    # reachable one, learns the others from it, and fails over to them when its server goes away.
    nats_url: NatsUrls = "nats://127.0.0.1:4222"
    stream: str = "AUCTION"
    filter_subject: str = "auction.events.>"
    durable: str = "archiver"
    # AUDIT ONLY, not public: the hidden maximums' records (the relay's `AUCTION_AUDIT`), consumed by a
    # durable of their own into `maximum_audit`.
    audit_stream: str = "AUCTION_AUDIT"
    audit_filter_subject: str = "auction.audit.>"
    audit_durable: str = "archiver-audit"
    # Events per fetch, and so per transaction.
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    fetch_timeout_seconds: float = Field(default=1.0, gt=0)
    # JetStream redelivers an event not acked within this time (after a crash of the archiver): how long
    # a killed archiver's fetched batch waits to be archived. Above the statement timeout, so one slow
    # write ends before its batch is handed out again (were it not, the copy would be skipped as a
    # duplicate); a batch retried for longer keeps its hold with in-progress acks.
    ack_wait_seconds: float = Field(default=6.0, gt=0)
    max_ack_pending: int = Field(default=20_000, ge=1)
    retry_initial_seconds: float = Field(default=0.1, gt=0)
    retry_max_seconds: float = Field(default=5.0, gt=0)
    # A statement taking longer is abandoned and its connection dropped (a frozen server would hang it).
    statement_timeout_seconds: float = Field(default=5.0, gt=0)
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    read_pool_size: int = Field(default=4, ge=1, le=100)
    host: str = "127.0.0.1"
    port: int = Field(default=50052, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no metrics listener
    health_interval_seconds: float = Field(default=1.0, gt=0)
    # On SIGTERM: how long to keep trying to commit the batch in hand before leaving it unacked.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    nats_ping_interval_seconds: float = Field(default=5.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_json: bool = False
    # Rebuild only: the bidder that writes the restored state (its `BidderAdminService`), its admin
    # token (the bidder's `BIDDER_ADMIN_TOKEN`), and how many of an item's newest bids to send for its
    # history (the bidder keeps at most its own `history_maxlen`).
    bidder_target: str = "127.0.0.1:50051"
    bidder_admin_token: SecretStr | None = None
    history_maxlen: int = Field(default=10_000, ge=100)
