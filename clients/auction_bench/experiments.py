"""`python -m auction_bench.experiments`: run the experiments and write one report with plots.

Each experiment starts the real servers and services it needs on free ports, measures, computes its
verdicts, and adds a section to `reports/<timestamp>/report.md` (PNG plots, `results.json`,
`machine.json` beside it). `--scale quick` for a shorter run, `tiny` for the harness's own test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from auction_bench import (
    exp_chaos,
    exp_contention,
    exp_durability,
    exp_failover,
    exp_fanout,
    exp_last_seconds,
    exp_outage,
    exp_scale,
)
from auction_bench.report import Report

Experiment = Callable[..., Awaitable[None]]
EXPERIMENTS: dict[str, Experiment] = {
    "contention": exp_contention.run,
    "fanout": exp_fanout.run,
    "failover": exp_failover.run,
    "outages": exp_outage.run,
    "durability": exp_durability.run,
    "chaos": exp_chaos.run,
    "scale": exp_scale.run,
    "last_seconds": exp_last_seconds.run,
}


def progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


async def run_all(names: list[str], scale: str, out: Path) -> Path:
    report = Report.create(out)
    report.results["scale"] = scale
    for name in names:
        progress(f"{name}: starting ({scale})")
        started = time.monotonic()
        await EXPERIMENTS[name](report, scale=scale, progress=progress)
        progress(f"{name}: done in {time.monotonic() - started:.0f} s")
    path = report.write("Auction platform experiments")
    progress(f"report: {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default=",".join(EXPERIMENTS), help=f"comma list of {', '.join(EXPERIMENTS)}"
    )
    parser.add_argument("--scale", choices=("full", "quick", "tiny"), default="full")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where report folders go")
    ns = parser.parse_args(argv)
    names = [n for n in ns.only.split(",") if n]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s): {', '.join(unknown)}")
    asyncio.run(run_all(names, ns.scale, ns.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
