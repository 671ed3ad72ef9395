"""Experiment 3 (scale): the edge and the fan-out as 1, 2 and 4 processes on this 2-core machine.

A 2-core machine cannot show scaling past its cores: what this shows is what extra processes buy (or
cost) once the cores are shared, which is where the per-instance figures for the scaling guide come from.
"""

from __future__ import annotations

import argparse
from typing import Any

from auction_bench import fanout_bench
from auction_bench.report import Report
from auction_bench.rest_war import bench

SCALES: dict[str, dict[str, Any]] = {
    "full": {"instances": [1, 2, 4], "bidders": 200, "seconds": 6.0, "viewers": 1000},
    "quick": {"instances": [1, 2], "bidders": 200, "seconds": 4.0, "viewers": 500},
    "tiny": {"instances": [1, 2], "bidders": 10, "seconds": 1.0, "viewers": 20},
}


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    edge_rows: list[list[object]] = []
    fanout_rows: list[list[object]] = []
    for count in size["instances"]:
        progress(f"  scale: edge x{count} workers, {size['bidders']} bidders")
        (run_figures,) = await bench(["lua"], [size["bidders"]], size["seconds"], 1.0, 1, edge_workers=count)
        edge_rows.append(
            [count, run_figures.rps, run_figures.p50_ms, run_figures.p99_ms, run_figures.verdict]
        )
    for count in size["instances"]:
        progress(f"  scale: fan-out x{count} processes, {size['viewers']} viewers")
        ns = argparse.Namespace(
            viewers=str(size["viewers"]), fanouts=count, client_procs=2, bids=10, rate=50.0,
            stream_seconds=2.0, broadcast="frame", run_timeout=300.0,
        )  # fmt: skip
        (figures,) = await fanout_bench.bench(ns)
        fanout_rows.append([count, figures.p50_ms, figures.p99_ms, figures.cpu_ms_per_bid, figures.dropped])
    report.results["scale"] = {"edge": edge_rows, "fanout": fanout_rows}
    report.heading("Experiment 3: horizontal scale on one 2-core machine")
    report.text(
        "Processes of one service on this machine share its 2 cores with the load generator, the bidder, "
        "Redis and each other, so more processes cannot add capacity beyond the cores; the figures show "
        "what one more process buys once the cores are shared. Across machines the edge, bidder and "
        "fan-out are stateless and scale out; see the scaling guide in deploy/README.md."
    )
    report.table(["edge workers", "bids/s", "p50 ms", "p99 ms", "verdict"], edge_rows)
    report.table(["fan-out processes", "p50 ms", "p99 ms", "CPU ms/bid", "dropped"], fanout_rows)
