"""The relay's one settings object (prefix `RELAY_`), built in `main()` and passed down."""

from __future__ import annotations

import os
import socket
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from auction_common.nats_connection import NatsUrls


def default_consumer() -> str:
    """Unique per process; pin it (`RELAY_CONSUMER`, e.g. a StatefulSet pod name) to resume at once."""
    return f"{socket.gethostname()}-{os.getpid()}"


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_", frozen=True)

    # With `redis_cluster`, any one node of the cluster (the client discovers the rest); database 0.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Cluster (cluster mode on): a cluster-aware client. Each outbox partition is its own hash
    # tag, so every read, claim and removal goes to the node owning that partition.
    redis_cluster: bool = False
    # One URL or several, comma-separated (the nodes of a NATS cluster): the client starts with any
    # reachable one, learns the others from it, and fails over to them when its server goes away.
    nats_url: NatsUrls = "nats://127.0.0.1:4222"
    # Must equal the bidder's BIDDER_PARTITIONS: the relay reads exactly those outbox streams.
    partitions: int = Field(default=16, ge=1, le=16384)
    stream: str = "AUCTION"
    subject_prefix: str = "auction.events"
    # AUDIT ONLY, not public: the hidden maximums' records, in a stream of their own (relay/route.py).
    audit_stream: str = "AUCTION_AUDIT"
    audit_subject_prefix: str = "auction.audit"
    # One Redis consumer group shared by every relay instance; each instance is one consumer in it.
    group: str = "relay"
    consumer: str = Field(default_factory=default_consumer, min_length=1, max_length=200)
    # Entries read per partition per round; a round publishes all of them, then confirms the acks.
    batch_size: int = Field(default=256, ge=1, le=10_000)
    # A publish without an ack after this long counts as failed and is retried (deduplicated by JetStream).
    ack_timeout_seconds: float = Field(default=5.0, gt=0)
    poll_interval_seconds: float = Field(default=0.01, gt=0)
    # Idle on a single server, the relay waits in Redis (XREADGROUP BLOCK) this long at most for new
    # entries instead of polling every `poll_interval_seconds` (which a Redis Cluster still does).
    idle_block_seconds: float = Field(default=1.0, gt=0, le=4)
    retry_max_seconds: float = Field(default=2.0, gt=0)
    # Pending entries idle this long belong to a dead (or stuck) relay and are claimed by this one.
    claim_idle_seconds: float = Field(default=15.0, gt=0)
    claim_interval_seconds: float = Field(default=5.0, gt=0)
    # Consumers with nothing pending and idle this long are removed from the group (restarted relays).
    stale_consumer_seconds: float = Field(default=3600.0, gt=0)
    # JetStream drops a re-publish of the same Nats-Msg-Id within this window; it must outlast any retry.
    duplicate_window_seconds: float = Field(default=120.0, gt=0)
    stream_max_age_seconds: float = Field(default=7 * 86_400.0, gt=0)
    stream_max_bytes: int = Field(default=-1, ge=-1)
    # Copies of the stream in a NATS cluster (R3 survives the loss of one node); at most the node count.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Above this many entries across all partitions the relay logs an alert and /readyz fails: the
    # archive is falling behind and Redis memory is being spent on the backlog.
    outbox_alert_entries: int = Field(default=500_000, ge=1)
    # An outbox entry that can never become an event (a bug or a foreign writer) is moved once to its
    # partition's dead-letter stream, with a metric and an error log line; while any dead letter is
    # left, /readyz fails too (so the alert is seen), unless this is off.
    dead_letters_fail_readiness: bool = True
    monitor_interval_seconds: float = Field(default=1.0, gt=0)
    nats_ping_interval_seconds: float = Field(default=5.0, gt=0)
    nats_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    # Per-bidder notices (`/ws/me` on the fan-out) from the relayed events; off: only JetStream.
    notices: bool = True
    # After an item's close its bidder set is kept this long (a redelivered close still finds it).
    notice_bidders_ttl_seconds: float = Field(default=86_400.0, gt=0)
    # Publish a round of outbox entries only once this many Redis replicas hold them (a fenced WAIT per
    # round, `relay.replica_wait` says why); 0: off, the default. Set it with the bidder's
    # BIDDER_REDIS_WAIT_REPLICAS. Single server only, like the bidder's (see `_check_wait`).
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    # How long one WAIT may take; a round still behind then is published later. Under the 5 s socket timeout.
    redis_wait_timeout_ms: int = Field(default=500, ge=1, le=4_000)
    host: str = "127.0.0.1"
    # /healthz, /readyz and /metrics; 0 picks a free port.
    port: int = Field(default=8090, ge=0, le=65535)
    # Below the supervisor's SIGKILL grace (devstack: 10 s, Kubernetes: 30 s), so a stop is always clean.
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_json: bool = False

    @model_validator(mode="after")
    def _check_windows(self) -> Self:
        """A retry must land inside the duplicate window, or a crash could publish an event twice."""
        slowest_retry = self.claim_idle_seconds + self.claim_interval_seconds + 2 * self.ack_timeout_seconds
        if self.duplicate_window_seconds <= slowest_retry:
            raise ValueError(
                f"duplicate_window_seconds ({self.duplicate_window_seconds}) must exceed "
                f"claim_idle + claim_interval + 2 * ack_timeout ({slowest_retry})"
            )
        events, audit = f"{self.subject_prefix}.", f"{self.audit_subject_prefix}."
        if self.stream == self.audit_stream or events.startswith(audit) or audit.startswith(events):
            raise ValueError("the audit records need a stream and subjects apart from the events'")
        if self.claim_idle_seconds <= self.ack_timeout_seconds:
            raise ValueError("claim_idle_seconds must exceed ack_timeout_seconds, or live relays steal work")
        return self

    @model_validator(mode="after")
    def _check_wait(self) -> Self:
        """Refuse WAIT on a cluster: the fence (a PUBLISH) is not replicated in cluster mode, and each
        partition lives on its own node, so one WAIT would prove nothing about the round."""
        if self.redis_cluster and self.redis_wait_replicas:
            raise ValueError(
                "RELAY_REDIS_WAIT_REPLICAS is not supported with RELAY_REDIS_CLUSTER=true: use a single "
                "primary with replicas, or RELAY_REDIS_WAIT_REPLICAS=0"
            )
        return self
