"""The archiver's Prometheus metrics, defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ARCHIVED = Counter("archiver_rows_inserted_total", "Rows inserted into the archive, by table", ["table"])
DUPLICATES = Counter(
    "archiver_duplicates_total", "Events skipped because their id was already archived (redeliveries)"
)
DEAD_LETTERS = Counter("archiver_dead_letters_total", "Messages that are not valid events, kept aside")
WRITE_FAILURES = Counter(
    "archiver_write_failures_total", "Batch transactions that failed (PostgreSQL down, frozen, ...)"
)
BATCH_SECONDS = Histogram(
    "archiver_batch_seconds",
    "From fetch to acks of one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "archiver_batch_messages", "Messages per batch", buckets=(1, 4, 16, 64, 256, 1024, 4096)
)
BACKLOG = Gauge(
    "archiver_backlog_messages",
    "Messages waiting in the stream for the archiver (as of its last fetch), by stream",
    ["stream"],
)
HISTORY_REQUESTS = Counter("archiver_history_requests_total", "ListBids calls, by gRPC code", ["code"])
