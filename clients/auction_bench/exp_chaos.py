"""Experiment 3d: every component SIGKILLed in turn under one bidding war, on the platform `make up` runs.

Runs `auction_bench.chaos` (the code the chaos test runs too) and writes its table: per component, how
long the write path had no accepted bid, how long until the stack was back and until the archive held
every acknowledged bid, the sends of a key already sent, the calls that failed after the SDK's retries,
lost and duplicated bids and the restarts it took; then the whole run's checks (closes, viewers).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from auction_bench.chaos import SCALES, ChaosFigures, run_chaos
from auction_bench.report import Report

SECTION = "Experiment 3d: every component SIGKILLed mid-war"


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    with tempfile.TemporaryDirectory(prefix="auction-chaos-") as tmp:
        figures = await run_chaos(Path(tmp) / "stack", size, progress)
        if not figures.exact:  # keep what each process logged, to find out why
            await asyncio.to_thread(
                shutil.copytree,
                Path(tmp) / "stack" / "logs",
                report.out_dir / "chaos-logs",
                dirs_exist_ok=True,
            )
    report.results["chaos"] = {**asdict(figures), "exact": figures.exact}
    war = size.war
    report.heading(SECTION)
    report.text(
        f"`python -m devstack up` (supervised: whatever dies is restarted with backoff). {war.bidders} SDK "
        f"bidders over {war.open_lots} lots at a time, each lot ending {war.lifetime:g} s after it opens (so "
        f"auctions close all through, also while something is down), SDK viewers (`watch_item`): "
        f"{war.viewers_per_lot} per lot. Each intended bid has one Idempotency-Key; the SDK retries it "
        f"({war.retry.attempts} attempts, backoff to {war.retry.max_wait:g} s) and a call that still fails "
        "is sent again with the same key until its outcome is "
        f"known. After {size.settle:g} s of war, each component in turn gets SIGKILL (PostgreSQL with every "
        "process it forked; an edge worker is respawned by uvicorn, everything else by the supervisor); the "
        "next kill waits until the process runs again, the edge is ready, a bid was accepted again and the "
        f"history and the archive hold every bid acknowledged so far, then {size.settle:g} s more of war.",
        '"unavailable s": the longest time without an accepted bid from the kill to the next kill (before '
        f'the first kill it was {figures.baseline_gap_s:.2f} s); "back s": kill to ready with a bid accepted '
        'again; "archived s": kill to the archive holding every acknowledged bid; "resends": sends of a key '
        'already sent (retries); "failed calls": calls that failed after the SDK\'s retries; "lost": '
        'acknowledged bids missing from the history or the archive; "duplicated": a key answered with two '
        "bids, a bid twice, a bid archived but not in the history. An archiver killed while it held a "
        "fetched batch not yet acked leaves that batch to JetStream's redelivery after the consumer's ack "
        'wait (6 s by default, `ARCHIVER_ACK_WAIT_SECONDS`): its "archived s" is then about 6.',
    )
    report.table(
        ["component", "unavailable s", "back s", "archived s", "accepted", "resends", "failed calls", "lost",
         "duplicated", "restarts"],
        [[k.component, k.unavailable_s, k.back_s, k.archived_s, k.accepted, k.resends, k.failed_calls, k.lost,
          k.duplicated, k.restarts] for k in figures.kills],
    )  # fmt: skip
    report.text(_verdict(figures))


def _verdict(figures: ChaosFigures) -> str:
    whole = (
        f"{figures.accepted} bids accepted out of {figures.requests} calls on {figures.items} lots, "
        f"{figures.viewers} viewers, {figures.resends} resends, {figures.failed_calls} calls failed after "
        f"their retries, {figures.unresolved} outcomes unknown at the end"
    )
    if figures.exact:
        return (
            f"**Verdict.** Lost 0 and duplicated 0 for every component: {whole}. Every lot closed exactly "
            "once to its highest bid, and every viewer saw every event once, in seq order, as archived."
        )
    faults = [
        *figures.lost,
        *figures.duplicated,
        *figures.closes,
        *figures.viewer_faults,
        *figures.unexpected,
    ]
    shown = "; ".join(faults[:5])
    return f"**Verdict: WRONG.** {whole}. {len(faults)} faults, first: {shown}"
