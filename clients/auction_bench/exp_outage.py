"""Experiments 3b and 3c: PostgreSQL down, then NATS down, under a steady bid load through REST.

Runs `auction_bench.archive_bench` (its own Redis, NATS, Postgres, bidder, edge, relay, archiver): the
archive's throughput from outbox to committed rows, then each outage with POST /bid p50/p99 before,
during and after, the backlog at recovery and how fast it was archived, and at the end whether the
archive equals the accepted bids exactly. The design promises the write path does not notice.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from auction_bench import archive_bench
from auction_bench.report import Report

SCALES: dict[str, dict[str, Any]] = {
    "full": {"prefill": 20_000, "items": 10, "rate": 30.0, "outage": 30.0, "before": 10.0, "after": 10.0},
    "quick": {"prefill": 5_000, "items": 5, "rate": 20.0, "outage": 15.0, "before": 5.0, "after": 5.0},
    "tiny": {"prefill": 300, "items": 2, "rate": 10.0, "outage": 3.0, "before": 2.0, "after": 2.0},
}


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    ns = argparse.Namespace(outages="postgres,nats", max_catch_up=300.0, partitions=16, json=None, **size)
    load = f"{size['items']} items x {size['rate']:.0f} bids/s"
    progress(f"  outages: postgres then nats, {size['outage']:.0f} s each, {load}")
    figures = await archive_bench.bench(ns)
    report.results["outages"] = asdict(figures)
    report.heading("Experiments 3b and 3c: PostgreSQL and NATS outages under load")
    report.text(
        f"Archive throughput with the relay started on a backlog of {figures.prefill_events} events: "
        f"{figures.throughput_events_per_s:,.0f} events/s from the Redis outbox to committed PostgreSQL "
        f"rows. Then {load} through the REST edge while each server is down for {size['outage']:.0f} s.",
    )
    rows: list[list[object]] = []
    for outage in figures.outages:
        phases = {p.name: p for p in outage.phases}
        before, during, after = phases["before"], phases["during"], phases["after"]
        moved = (during.p99_ms / before.p99_ms - 1) * 100 if before.p99_ms else 0.0
        latencies = [before.p50_ms, before.p99_ms, during.p50_ms, during.p99_ms, after.p50_ms, after.p99_ms]
        rows.append(
            [outage.kind, *latencies, f"{moved:+.0f}%", during.bids, outage.backlog, outage.catch_up_seconds]
        )
    report.table(
        ["down", "before p50", "before p99", "during p50", "during p99", "after p50", "after p99",
         "p99 moved", "bids during", "backlog", "catch-up s"], rows,
    )  # fmt: skip
    verdict = "identical" if figures.exact else "DIFFERENT"
    report.text(
        f"Accepted bids {figures.accepted}, archived {figures.archived}: the archive is {verdict} to the "
        "accepted set (same item, seq, bid id, bidder and amount for every bid; none lost, none twice)."
    )
