"""Experiments 3b and 3c: PostgreSQL, then NATS, killed and separately frozen, under a steady REST bid load.

Runs `auction_bench.archive_bench` (its own Redis, NATS, Postgres, bidder, edge, relay, archiver): the
archive's throughput from outbox to committed rows, then four outages (each server SIGKILLed with every
process it forked and restarted on the same data; each frozen with SIGSTOP, then SIGCONT) with POST /bid
answers per second and p50/p99 before, during and after, the backlog at recovery and how fast it was
archived, and at the end whether the archive equals the accepted bids exactly. The design promises the
write path does not notice; the verdict says by how much it moved.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from typing import Any

import matplotlib.pyplot as plt

from auction_bench import archive_bench, archive_outage
from auction_bench.outage_figures import Bound, moved_pct
from auction_bench.report import Report

OUTAGES = "postgres-kill,postgres-freeze,nats-kill,nats-freeze"
SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "prefill": 20_000, "items": 10, "rate": 30.0, "outage": 20.0, "before": 8.0, "after": 8.0,
        "bucket": 1.0,
    },
    "quick": {
        "prefill": 5_000, "items": 5, "rate": 20.0, "outage": 8.0, "before": 4.0, "after": 4.0, "bucket": 1.0,
    },
    "tiny": {
        "prefill": 300, "items": 2, "rate": 10.0, "outage": 2.0, "before": 1.5, "after": 1.5, "bucket": 0.5,
    },
}  # fmt: skip
BOUND = Bound()


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    ns = argparse.Namespace(outages=OUTAGES, max_catch_up=120.0, partitions=16, json=None, **size)
    load = f"{size['items']} items x {size['rate']:.0f} bids/s"
    progress(f"  outages: {OUTAGES}, {size['outage']:.0f} s each, {load}")
    figures = await archive_bench.bench(ns)
    report.results["outages"] = asdict(figures)
    report.heading("Experiments 3b and 3c: PostgreSQL and NATS outages under load")
    report.text(
        f"Archive throughput with the relay started on a backlog of {figures.prefill_events} events: "
        f"{figures.throughput_events_per_s:,.0f} events/s from the Redis outbox to committed PostgreSQL "
        f"rows. Then a paced load of {load} (one bidder per item, always at the minimum, so every bid is "
        "accepted) through the REST edge, from a process of its own, while each server goes down for "
        f"{size['outage']:.0f} s: **kill** is a SIGKILL of the server and every process it forked "
        "(PostgreSQL's backends and auxiliary processes too), then a restart on the same port and data "
        "(PostgreSQL runs crash recovery); **freeze** is a SIGSTOP of all those processes, then SIGCONT, "
        "so connections stay open and nothing answers. Because the load is paced, bids/s shows whether "
        "the write path kept up with the offered rate, not its ceiling (experiment 1 measures that). "
        '"down s" runs from the signal until the server serves again (a restart included); "after" '
        'lasts until the backlog is archived, at least as long as "before". Backlog: bids the bidder had '
        "accepted on the load's items at recovery that the archive did not hold yet; catch-up ends when it "
        "holds them all. Catch-up includes the relay's or archiver's wait before its next attempt (their "
        "retry pauses grow while the server is away, and the NATS client reconnects once a second), so "
        "backlog / catch-up is not the archive's throughput; the prefill figure above is.",
    )
    report.table(
        ["outage", "down s", "bids/s before", "bids/s during", "bids/s after", "rate moved",
         "p50 before", "p99 before", "p50 during", "p99 during", "p50 after", "p99 after", "p99 moved",
         "backlog", "catch-up s"],
        [_row(outage) for outage in figures.outages],
    )  # fmt: skip
    report.text("Latencies in ms; moves are during vs before.")
    _timeline_plot(report, figures)
    report.text(_verdict(figures))


def _phases(outage: archive_outage.Outage) -> tuple[Any, Any, Any]:
    by_name = {p.name: p for p in outage.phases}
    return by_name["before"], by_name["during"], by_name["after"]


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.1f}%"


def _row(outage: archive_outage.Outage) -> list[object]:
    before, during, after = _phases(outage)
    catch_up = (
        f"{outage.catch_up_seconds:.2f}" if outage.caught_up else f"NOT within {outage.catch_up_seconds:.0f}"
    )
    return [
        outage.kind, outage.seconds, before.bids_per_s, during.bids_per_s, after.bids_per_s,
        _pct(moved_pct(before.bids_per_s, during.bids_per_s)),
        before.p50_ms, before.p99_ms, during.p50_ms, during.p99_ms, after.p50_ms, after.p99_ms,
        _pct(moved_pct(before.p99_ms, during.p99_ms)), outage.backlog, catch_up,
    ]  # fmt: skip


def _timeline_plot(report: Report, figures: archive_bench.Figures) -> None:
    """One row per outage: answers per second on the left, p50/p99 on the right, the down time shaded."""
    outages = figures.outages
    if not outages:
        return
    fig, axes = plt.subplots(len(outages), 2, figsize=(11, 2.2 * len(outages) + 0.6), squeeze=False)
    for (rate_ax, latency_ax), outage in zip(axes, outages, strict=True):
        ts = [p.t for p in outage.timeline]
        rate_ax.plot(ts, [p.bids_per_s for p in outage.timeline], color="tab:blue", label="bids/s answered")
        rate_ax.set_ylabel("bids/s")
        latency_ax.plot(ts, [p.p50_ms for p in outage.timeline], color="tab:green", label="p50 ms")
        latency_ax.plot(ts, [p.p99_ms for p in outage.timeline], color="tab:red", label="p99 ms")
        latency_ax.set_ylabel("POST /bid ms")
        for ax, what in ((rate_ax, "throughput"), (latency_ax, "latency")):
            ax.axvspan(0, outage.seconds, color="tab:gray", alpha=0.25, label="server down")
            ax.axvline(outage.seconds + outage.catch_up_seconds, color="tab:orange", linestyle=":",
                       label="backlog archived")  # fmt: skip
            ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
            ax.set_xlim(outage.marks[0][0] - outage.marks[1][0], outage.marks[2][1] - outage.marks[1][0])
            ax.set_title(f"{outage.kind}: POST /bid {what}", fontsize=9)
            ax.grid(True, alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("seconds from the server going down")
    handles = [h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]]
    labels = [label for ax in axes[0] for label in ax.get_legend_handles_labels()[1]]
    unique = dict(zip(labels, handles, strict=True))
    fig.legend(unique.values(), unique.keys(), loc="upper center", ncol=len(unique), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (2.2 * len(outages) + 0.6)))
    report.figure("outage_timeline", "POST /bid throughput and latency through each outage", fig)


def _verdict(figures: archive_bench.Figures) -> str:
    """The design's promise, checked against this run's numbers."""
    rate_moves, p99_moves, broken = [], [], []
    for outage in figures.outages:
        before, during, _ = _phases(outage)
        rate_moves.append((moved_pct(before.bids_per_s, during.bids_per_s), outage.kind))
        p99_moves.append((moved_pct(before.p99_ms, during.p99_ms), outage.kind))
        if not (BOUND.rate_ok(before, during) and BOUND.p99_ok(before, during)):
            broken.append(f"{outage.kind} ({before.p99_ms:.1f} -> {during.p99_ms:.1f} ms p99, "
                          f"{before.bids_per_s:.0f} -> {during.bids_per_s:.0f} bids/s)")  # fmt: skip
    lagging = [o.kind for o in figures.outages if not o.caught_up]
    valid_rate = [m for m in rate_moves if not math.isnan(m[0])]
    valid_p99 = [m for m in p99_moves if not math.isnan(m[0])]
    parts = []
    if valid_rate and valid_p99:
        worst_rate, worst_p99 = max(valid_rate, key=lambda m: abs(m[0])), max(valid_p99)
        rate_span = f"{min(valid_rate)[0]:+.1f}% to {max(valid_rate)[0]:+.1f}%"
        p99_span = f"{min(valid_p99)[0]:+.0f}% to {worst_p99[0]:+.0f}%"
        parts.append(
            f"During the {len(figures.outages)} outages the write path's rate moved by {rate_span} "
            f"(largest move: {worst_rate[1]}) and its p99 by {p99_span} "
            + (f"(largest rise: {worst_p99[1]})." if worst_p99[0] > 0 else "(it fell in every one).")
        )
    if broken:
        parts.append(f"The promise that the write path does not notice does NOT hold ({BOUND.describe()}) "
                     f"for: {'; '.join(broken)}.")  # fmt: skip
    else:
        parts.append(
            f"By the bound we hold it to ({BOUND.describe()}) the write path is unchanged in every one."
        )
    if figures.errors:
        parts.append(f"{figures.errors} POST /bid requests failed, e.g. {figures.error_samples[:2]}.")
    else:
        parts.append("No POST /bid request failed.")
    if lagging:
        parts.append(f"The backlog was NOT archived within the watch after: {', '.join(lagging)}.")
    exact = "identical" if figures.exact else "DIFFERENT"
    lost = (
        "nothing lost, nothing twice" if figures.exact else f"{figures.missing} lost, {figures.extra} extra"
    )
    parts.append(
        f"Archive after recovery: {figures.accepted} bids accepted, {figures.archived} archived; the "
        f"archive is {exact} to the accepted set (same item, seq, bid id, bidder and amount for every "
        f"bid): {lost}."
    )
    return "**Verdict.** " + " ".join(parts)
