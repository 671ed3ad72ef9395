"""Prometheus metrics of one fan-out process (its own registry), served at `/metrics` on the WebSocket port.

With several processes sharing the port, each scrape reaches one of them; label the scrape target
by process (or scrape each process's own port in production) to see them all.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BROADCAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class FanoutMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.viewers = Gauge("fanout_viewers", "Open viewer connections (joining or live).", registry=r)
        self.items = Gauge("fanout_items", "Items subscribed in this process.", registry=r)
        self.events = Counter("fanout_events_total", "Events received from Redis Pub/Sub.", registry=r)
        self.frames = Counter("fanout_frames_total", "Frames broadcast to live viewers.", registry=r)
        self.batched_events = Counter(
            "fanout_batched_events_total", "Events that went out inside a batch frame.", registry=r
        )
        self.broadcast_seconds = Histogram(
            "fanout_broadcast_seconds", "Time to hand one frame to every live viewer of an item.",
            buckets=BROADCAST_BUCKETS, registry=r,
        )  # fmt: skip
        self.gap_fills = Counter(
            "fanout_gap_fills_total", "Holes in the Pub/Sub feed filled from the history stream.", registry=r
        )
        self.catch_ups = Counter(
            "fanout_resubscribe_catch_ups_total",
            "History reads after a re-subscription.",
            registry=r,
        )
        self.replays = Counter(
            "fanout_replayed_events_total", "Events sent to joining viewers from the history.", registry=r
        )
        self.resets = Counter("fanout_resets_total", "Resumes answered with reset + snapshot.", registry=r)
        self.snapshot_calls = Counter("fanout_snapshot_calls_total", "GetItem calls made.", registry=r)
        self.closed = Counter(
            "fanout_viewers_closed_total", "Viewers closed by the server, by reason.", ["reason"], registry=r
        )
        self.rejected = Counter(
            "fanout_handshakes_rejected_total", "Handshakes refused, by reason.", ["reason"], registry=r
        )
        self.notice_viewers = Gauge("fanout_notice_viewers", "Open /ws/me connections.", registry=r)
        self.notices = Counter(
            "fanout_notices_total", "Per-bidder notices received from Redis (sent to that bidder's sockets).",
            registry=r,
        )  # fmt: skip
        self.redis_errors = Counter(
            "fanout_pubsub_errors_total",
            "Pub/Sub connection failures.",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
