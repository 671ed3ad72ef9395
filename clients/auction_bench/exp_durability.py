"""Experiment 3e: what Redis durability costs, each option against the default in one run.

`auction_bench.durability` runs the same REST war against `appendfsync everysec` (the default),
`appendfsync always`, and a replica the bidder WAITs for after each commit batch (at full scale also
both together), every configuration up at once and taken in rotated order. The section says what an
acknowledged bid survives with each option, and its bids/s and latency next to the default's.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from auction_bench import durability
from auction_bench.report import Report

SCALES: dict[str, tuple[list[str], list[int], float, float]] = {
    "full": ([*durability.DEFAULT_CONFIGS, "always+wait1"], [10, 64, 200], 8.0, 2.0),
    "quick": (durability.DEFAULT_CONFIGS, [64], 3.0, 1.0),
    "tiny": (durability.DEFAULT_CONFIGS, [4], 1.0, 0.3),
}


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    configs, levels, duration, warmup = SCALES[scale]

    def announce(run: durability.DurabilityRun) -> None:
        f = run.figures
        progress(f"  durability: {run.config} x{f.concurrency}: {f.rps:,.0f} bids/s, p99 {f.p99_ms:.1f} ms")

    runs, filesystem = await durability.bench(configs, levels, duration, warmup, on_run=announce)
    report.results["durability"] = {"filesystem": filesystem, "runs": [asdict(r) for r in runs]}
    report.heading("Experiment 3e: what Redis durability costs")
    report.text(
        f"The same REST bidding war (one hot item, the lean load generator, {duration:g} s measured after "
        f"{warmup:g} s warm-up) against a Lua bidder and an edge over each Redis configuration, all "
        "started first and taken in an order rotated per level, so that drift of the shared machine "
        f"favours none. Redis data on {filesystem}"
        + (
            " (tmpfs: an fsync costs nothing here, so `always` is not measured)."
            if filesystem == "tmpfs"
            else "."
        )
    )
    default = {r.figures.concurrency: r.figures.rps for r in runs if r.config == "everysec"}
    rows = []
    for r in sorted(runs, key=lambda r: (r.figures.concurrency, configs.index(r.config))):
        f = r.figures
        base = default.get(f.concurrency, math.nan)
        rows.append([
            r.config, r.survives, f.concurrency, f.rps, _ratio(f.rps, base), f.p50_ms, f.p99_ms,
            f.error_rate * 100, _waits(r), f.verdict,
        ])  # fmt: skip
    report.table(
        ["configuration", "an acknowledged bid survives", "bidders", "bids/s", "vs everysec", "p50 ms",
         "p99 ms", "errors %", "WAITs (replica equal)", "verdict"],
        rows,
    )  # fmt: skip
    series = {
        name: ([float(x) for x in levels], [_rps(runs, name, level) for level in levels]) for name in configs
    }
    report.line_plot(
        "durability_throughput", "bids/s per Redis durability option", "concurrent bidders", "bids/s", series
    )
    report.text(_verdict(runs))


def _rps(runs: list[durability.DurabilityRun], config: str, level: int) -> float:
    return next(
        (r.figures.rps for r in runs if r.config == config and r.figures.concurrency == level), math.nan
    )


def _ratio(value: float, base: float) -> str:
    return "n/a" if not base or math.isnan(base) else f"{value / base:.2f}"


def _waits(run: durability.DurabilityRun) -> str:
    if run.replicas == 0:
        return "-"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(run.waits.items())) or "none"
    return f"{counts} ({'yes' if run.replica_equal else 'NO'})"


def _verdict(runs: list[durability.DurabilityRun]) -> str:
    wrong = [f"{r.config} x{r.figures.concurrency}" for r in runs if r.figures.verdict != "correct"]
    diverged = [f"{r.config} x{r.figures.concurrency}" for r in runs if r.replica_equal is False]
    behind = sum(r.waits.get("behind", 0) + r.waits.get("failed", 0) for r in runs)
    parts = ["**Verdict.**"]
    parts.append(
        "Every war is correct with every option." if not wrong else f"WRONG wars: {', '.join(wrong)}."
    )
    parts.append(
        "Each replica ended equal to its primary"
        + (
            f", and {behind} WAITs fell short (answered UNAVAILABLE)."
            if behind
            else ", and no WAIT fell short."
        )
        if not diverged
        else f"A replica DIFFERS from its primary after: {', '.join(diverged)}."
    )
    return " ".join(parts)
