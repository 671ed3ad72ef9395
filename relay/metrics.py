"""The relay's Prometheus metrics, defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("relay_events_published_total", "Outbox entries published and acknowledged by JetStream")
DUPLICATES = Counter(
    "relay_duplicates_total", "Re-published entries JetStream had already (dropped by Nats-Msg-Id)"
)
PUBLISH_FAILED = Counter("relay_publish_failures_total", "Entries whose publish was not acknowledged in time")
BAD_ENTRIES = Counter(
    "relay_bad_entries_total", "Outbox entries that are not valid events (moved to the dead-letter streams)"
)
DEAD_LETTERS = Gauge(
    "relay_dead_letter_entries", "Entries in the outbox dead-letter streams, all partitions (alert when > 0)"
)
CLAIMED = Counter("relay_entries_claimed_total", "Pending entries taken over from other relay instances")
BATCH_SECONDS = Histogram(
    "relay_batch_seconds",
    "One round: read, publish, confirm acks, remove",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "relay_batch_entries", "Entries per round", buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384)
)
OUTBOX_DEPTH = Gauge("relay_outbox_entries", "Entries waiting in the outbox, by partition", ["partition"])
OUTBOX_AGE = Gauge(
    "relay_outbox_oldest_age_seconds", "Age of the oldest entry in the outbox, by partition", ["partition"]
)
OUTBOX_TOTAL = Gauge("relay_outbox_entries_total", "Entries waiting in the outbox, all partitions")
OUTBOX_OVER_BOUND = Gauge("relay_outbox_over_bound", "1 while the outbox is above RELAY_OUTBOX_ALERT_ENTRIES")
NATS_CONNECTED = Gauge("relay_nats_connected", "1 while connected to NATS")
NOTICES_SENT = Counter(
    "relay_notices_sent_total", "Per-bidder notices published (outbid, won, lost, extended; repeats included)"
)
REDIS_WAITS = Counter(
    "relay_redis_waits_total",
    "Fenced WAITs before publishing a round (RELAY_REDIS_WAIT_REPLICAS), by outcome: acknowledged, "
    "behind (the round is not published, and retried), failed",
    ["outcome"],
)
