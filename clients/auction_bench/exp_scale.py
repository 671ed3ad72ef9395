"""Experiment 3 (scale): the edge and the fan-out as 1, 2 and 4 processes on this 2-core machine.

Two runs per process count. The mixed load (`auction_bench.mixed_scale`): a REST bidding war on several
items and WebSocket viewers of those items at the same time, with the edge running N uvicorn workers and
N fan-out processes sharing one port. And, as the baseline without viewers, the bids-only war on one
item (`auction_bench.rest_war`) against the edge with N workers. The viewers-only fan-out sweep this
experiment used to run is gone: the mixed run measures the same broadcast latency and stream checks per
process count, under a real bid load, and experiment 2 covers fan-out latency against viewer counts.

A 2-core machine cannot show scaling past its cores: what this shows is what extra processes buy (or
cost) once the cores are shared, and where the CPU goes, which is where the per-instance figures for
the scaling guide come from.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from typing import Any

import matplotlib.pyplot as plt

from auction_bench import mixed_scale
from auction_bench.report import Report
from auction_bench.rest_war import bench

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "instances": [1, 2, 4], "bidders": 200, "seconds": 6.0,
        "mixed": {"items": 4, "bidders": 40, "viewers": 1000, "seconds": 8.0, "warmup": 1.0, "settle": 1.0},
    },
    "quick": {
        "instances": [1, 2, 4], "bidders": 200, "seconds": 4.0,
        "mixed": {"items": 4, "bidders": 40, "viewers": 300, "seconds": 4.0, "warmup": 1.0, "settle": 1.0},
    },
    "tiny": {
        "instances": [1, 2], "bidders": 10, "seconds": 1.0,
        "mixed": {"items": 2, "bidders": 6, "viewers": 20, "seconds": 1.0, "warmup": 0.5, "settle": 0.5},
    },
}  # fmt: skip


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    mixed_size = size["mixed"]
    progress(
        f"  scale: mixed load, edge and fan-out x{size['instances']}, {mixed_size['bidders']} bidders on "
        f"{mixed_size['items']} items, {mixed_size['viewers']} viewers"
    )
    ns = argparse.Namespace(instances=size["instances"], run_timeout=300.0, **mixed_size)
    mixed = await mixed_scale.bench(ns)
    edge_rows: list[list[object]] = []
    for count in size["instances"]:
        progress(f"  scale: bids only, edge x{count} workers, {size['bidders']} bidders on one item")
        (run_figures,) = await bench(["lua"], [size["bidders"]], size["seconds"], 1.0, 1, edge_workers=count)
        edge_rows.append(
            [count, run_figures.rps, run_figures.p50_ms, run_figures.p99_ms, run_figures.verdict]
        )
    report.results["horizontal_scale"] = {
        "settings": size,
        "mixed": [asdict(f) | {"viewers_ok": f.viewers_ok} for f in mixed],
        "edge": edge_rows,
    }
    report.heading("Experiment 3: horizontal scale on one 2-core machine")
    report.text(_machine_statement(mixed))
    report.heading("Mixed load: bidders and viewers at once", level=3)
    report.text(
        f"{mixed_size['bidders']} REST bidders in a bidding war on {mixed_size['items']} items (each reads "
        f"`min_next_bid` from every answer and tops it) for {mixed_size['seconds']:.0f} s, while "
        f"{mixed_size['viewers']} WebSocket viewers watch those items; the edge runs N uvicorn workers "
        "and N fan-out processes share one port. Broadcast latency: arrival at each viewer minus the "
        "moment the bid's 201 reached its bidder, over every accepted bid and every viewer of its item; "
        "the arrival is the kernel's receive timestamp on the viewer's socket, and \"as read\" is when the "
        "viewers' process read it, which adds that one process's wait for a core behind all its viewers. "
        "Every viewer must get every event of its item once, in seq order, and end at the item's last seq.",
    )
    report.table(
        ["N", "bids/s", "accepted/s", "bid p50 ms", "bid p99 ms", "broadcast p50 ms", "broadcast p99 ms",
         "p99 as read ms", "viewers", "dropped", "reordered/dup", "behind", "closed", "viewers' verdict",
         "bids' verdict"],
        [_mixed_row(f) for f in mixed],
    )  # fmt: skip
    names = list(mixed[0].cpu_pct) if mixed else []
    report.text(
        'CPU during each war, % of one core (the two cores make 200); "other" is the rest of the '
        "machine's busy time: processes outside this experiment, and the kernel's own work."
    )
    report.table(
        ["N", *names, "other", "machine busy"],
        [
            [f.instances, *(f"{f.cpu_pct[n]:.0f}" for n in names),
             f"{f.machine_busy_pct - sum(f.cpu_pct.values()):.0f}", f"{f.machine_busy_pct:.0f}"]
            for f in mixed
        ],
    )  # fmt: skip
    report.heading("Bids only (baseline, no viewers)", level=3)
    report.text(
        f"{size['bidders']} bidders on one item through the edge with N workers, {size['seconds']:.0f} s."
    )
    report.table(["edge workers", "bids/s", "p50 ms", "p99 ms", "verdict"], edge_rows)
    _plot(report, mixed, edge_rows)


def _mixed_row(f: mixed_scale.MixedFigures) -> list[object]:
    viewers = "every event once, in order" if f.viewers_ok else "LOST OR REORDERED EVENTS"
    return [
        f.instances, f.bids_per_s, f.accepted_per_s, f.bid_p50_ms, f.bid_p99_ms, f.broadcast_p50_ms,
        f.broadcast_p99_ms, f.read_p99_ms, f"{f.connected}/{f.viewers}", f.dropped, f.repeated, f.behind,
        f.closed, viewers, f.verdict,
    ]  # fmt: skip


def _machine_statement(mixed: list[mixed_scale.MixedFigures]) -> str:
    """The plain statement about the 2 cores, with this run's own numbers."""
    text = (
        "This machine has 2 cores, and every process of the experiment runs on them: the load generators, "
        "Redis, the bidder, and the N edge workers and N fan-out processes under test. More processes of "
        "one service cannot add capacity beyond those cores, so this cannot show scaling past 2 (or even to "
        "2, since the cores are already shared). What it shows instead: whether more processes still "
        "serve the same load correctly, what one more process costs or buys once the cores are shared, "
        "and where the CPU goes."
    )
    if not mixed:
        return text
    busy = [f.machine_busy_pct for f in mixed]
    load = [f.cpu_pct.get("bid client", 0.0) + f.cpu_pct.get("viewers", 0.0) for f in mixed]
    first, last = mixed[0], mixed[-1]
    moved = (last.bids_per_s / first.bids_per_s - 1) * 100 if first.bids_per_s else math.nan
    return text + (
        f" In the mixed runs below the two cores were {min(busy):.0f}-{max(busy):.0f} % busy (of 200), and "
        f"the load generators alone (bidding client and viewers) took {min(load):.0f}-{max(load):.0f} % of "
        f"one core; going from {first.instances} to {last.instances} instances moved bids/s by "
        f"{moved:+.0f} % ({first.bids_per_s:,.0f} to {last.bids_per_s:,.0f}) and broadcast p99 from "
        f"{first.broadcast_p99_ms:.0f} to {last.broadcast_p99_ms:.0f} ms. Across machines the edge, "
        "bidder and fan-out are stateless and scale out; see the scaling guide in deploy/README.md."
    )


def _plot(report: Report, mixed: list[mixed_scale.MixedFigures], edge_rows: list[list[object]]) -> None:
    if not mixed:
        return
    fig, (rate_ax, latency_ax) = plt.subplots(1, 2, figsize=(11, 4))
    xs = [f.instances for f in mixed]
    rate_ax.plot(xs, [f.bids_per_s for f in mixed], marker="o", label="mixed load (with viewers)")
    edge_xs = [float(str(r[0])) for r in edge_rows]
    rate_ax.plot(edge_xs, [float(str(r[1])) for r in edge_rows], marker="s", linestyle="--",
                 label="bids only (one item)")  # fmt: skip
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_ylabel("bids/s")
    rate_ax.set_title("Bid throughput", fontsize=10)
    latency_ax.plot(
        xs, [f.broadcast_p99_ms for f in mixed], marker="o", color="tab:red", label="broadcast p99"
    )
    latency_ax.plot(
        xs, [f.broadcast_p50_ms for f in mixed], marker="o", color="tab:orange", label="broadcast p50"
    )
    latency_ax.plot(xs, [f.read_p99_ms for f in mixed], marker="o", color="tab:red", linestyle=":",
                    label="broadcast p99 as read")  # fmt: skip
    latency_ax.plot(xs, [f.bid_p99_ms for f in mixed], marker="^", color="tab:purple", linestyle="--",
                    label="bid p99")  # fmt: skip
    latency_ax.set_ylim(bottom=0)
    latency_ax.set_ylabel("ms")
    latency_ax.set_title("Latency under the mixed load", fontsize=10)
    for ax in (rate_ax, latency_ax):
        ax.set_xlabel("instances (edge workers = fan-out processes)")
        ax.set_xticks(sorted(set(xs) | set(edge_xs)))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    report.figure("scale_mixed", "Bids/s and broadcast latency vs instances (2 cores)", fig)
