"""Experiment 1: write contention on one hot item, Lua vs WATCH/MULTI/EXEC, against the bare ceiling.

A sweep of concurrent bidders per strategy with the lean load generator (Locust saturates early on
2 cores), the same war against the whole platform as `make up` runs it (`stack_war`), plus one real
Locust run (FastHttpUser) of the same war. Every run gets a computed verdict and the CPU microseconds
per bid of each process, so the bottleneck is named by the run.
"""

from __future__ import annotations

import asyncio
import csv
import os
import secrets
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from auction_bench import grpc_war, stack_war
from auction_bench.report import Report
from auction_bench.rest_war import RunFigures, bench, create_item, get_item, target_processes
from auction_bench.verdict import Verdict, war_verdict
from auction_contract.redis_layout import item_keys
from devstack.servers import RedisServer

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class Scale:
    levels: list[int]
    duration: float
    warmup: float
    locust_users: int
    locust_seconds: int
    grpc_levels: list[int]


SCALES = {
    "full": Scale([10, 64, 200, 1000], 8.0, 2.0, 50, 10, [10, 64, 200]),
    "quick": Scale([10, 64, 200], 3.0, 1.0, 20, 5, [10, 200]),
    "tiny": Scale([5], 1.0, 0.3, 4, 2, [5]),
}


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    size = SCALES[scale]
    levels, duration, warmup = size.levels, size.duration, size.warmup

    def announce(run: RunFigures) -> None:
        progress(
            f"  contention: {run.target} x{run.concurrency}: {run.rps:,.0f} bids/s, p99 {run.p99_ms:.1f} ms"
        )

    figures = await bench(["bare", "lua", "watch"], levels, duration, warmup, procs=1, on_run=announce)
    progress(f"  contention: the make up stack, bidders {levels}")
    stack = await stack_war.bench(levels, duration, warmup, on_run=announce)
    locust = await locust_run(users=size.locust_users, seconds=size.locust_seconds, progress=progress)
    progress(f"  contention: gRPC straight to the bidder, unary and batched, bidders {size.grpc_levels}")
    grpc_figures = await grpc_war.bench(["unary", "batched"], size.grpc_levels, duration, warmup)
    report.results["contention"] = {
        "runs": [asdict(f) for f in figures],
        "stack": asdict(stack),
        "locust": locust,
        "grpc": [asdict(f) for f in grpc_figures],
    }
    _write(report, figures, locust, duration)
    _write_stack(report, stack, figures)
    _write_grpc(report, grpc_figures, figures)


async def locust_run(users: int, seconds: int, progress: Any = print) -> dict[str, Any]:
    """Locust (headless) against the Lua path; the verdict comes from the item's own event history."""
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="auction-locust-") as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        await redis.start()
        processes, _ = target_processes("lua", redis.url, secret, Path(tmp))
        for p in processes:
            await p.start()
        try:
            base_url = str(processes[-1].endpoint)
            item_id = await create_item(base_url, secret)
            progress(f"  contention: locust, {users} users for {seconds} s")
            stats = await _locust(base_url, item_id, secret, users, seconds, Path(tmp))
            final = await get_item(base_url, item_id)
            verdict = await history_verdict(redis.url, item_id, final)
        finally:
            for p in reversed(processes):
                await p.stop()
            await redis.stop()
    return {**stats, "users": users, "seconds": seconds, "verdict": str(verdict)}


async def _locust(
    base_url: str, item_id: str, secret: str, users: int, seconds: int, tmp: Path
) -> dict[str, Any]:
    env = {**os.environ, "AUCTION_JWT_SECRET": secret, "AUCTION_ITEM_ID": item_id}
    prefix = tmp / "locust"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
        "-r", str(users), "-t", f"{seconds}s", "--host", base_url, "--csv", str(prefix), "--only-summary",
        "--stop-timeout", "5", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), timeout=seconds + 120)
    return _locust_stats(Path(f"{prefix}_stats.csv"), err.decode())


def _locust_stats(stats_path: Path, stderr: str) -> dict[str, Any]:
    """The Aggregated row of Locust's CSV statistics."""
    if not stats_path.exists():
        return {"error": stderr[-2000:]}
    with stats_path.open() as handle:
        rows = list(csv.DictReader(handle))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p99_ms": float(total["99%"]),
    }


async def history_verdict(
    redis_url: str, item_id: str, final: dict[str, object], partitions: int = 16
) -> Verdict:
    """Rebuild the accepted bids from the item's event history in Redis and judge them."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(
            "list[tuple[str, dict[str, str]]]", await client.xrange(item_keys(item_id, partitions).events)
        )
    finally:
        await client.aclose()
    accepted = []
    for _, fields in entries:
        event = orjson.loads(fields["e"])
        if event["type"] == "bid":
            accepted.append((int(event["seq"]), int(event["amount"])))
    return war_verdict(accepted, final, 10)


def _series(figures: list[RunFigures], value: str) -> dict[str, tuple[list[float], list[float]]]:
    series = {}
    for target in ("bare", "lua", "watch"):
        runs = [f for f in figures if f.target == target]
        series[target] = ([float(f.concurrency) for f in runs], [float(getattr(f, value)) for f in runs])
    return series


def _row(f: RunFigures) -> list[object]:
    conflicts = "" if f.watch_conflicts is None else f.watch_conflicts
    return [
        f.target, f.concurrency, f.rps, f.accepted_per_s, f.p95_ms, f.p99_ms, f.error_rate * 100,
        conflicts, f.redis_cpu_pct or 0.0, f.slowlog_count or 0, f.verdict,
    ]  # fmt: skip


def _write(report: Report, figures: list[RunFigures], locust: dict[str, Any], duration: float) -> None:
    report.heading("Experiment 1: write contention on one item, Lua vs WATCH/MULTI/EXEC")
    report.text(
        f"Each run: a fresh item, N keep-alive connections each bidding like a person (read min_next_bid, "
        f"top it), {duration:.0f} s measured after a warm-up. `bids/s` counts every answered bid (201 or "
        "409); `accepted/s` only 201s. Redis CPU is from `INFO cpu` deltas, slow commands from SLOWLOG "
        "(threshold 1 ms). The verdict checks unique gap-free seqs, rising amounts and the final item.",
    )
    headers = [
        "target", "bidders", "bids/s", "accepted/s", "p95 ms", "p99 ms", "errors %",
        "WATCH conflicts", "Redis CPU %", "slow cmds", "verdict",
    ]  # fmt: skip
    report.table(headers, [_row(f) for f in figures])
    by = {(f.target, f.concurrency): f for f in figures}
    ratios: list[list[object]] = []
    for level in sorted({f.concurrency for f in figures}):
        lua, watch, bare = by.get(("lua", level)), by.get(("watch", level)), by.get(("bare", level))
        if lua and watch and bare:
            accepted_ratio = lua.accepted_per_s / max(watch.accepted_per_s, 1e-9)
            ratios.append([level, lua.rps / bare.rps, lua.rps / watch.rps, accepted_ratio])
    report.table(["bidders", "Lua / bare bids/s", "Lua / WATCH bids/s", "Lua / WATCH accepted/s"], ratios)
    report.text(
        "CPU microseconds per answered bid of each process over the measured seconds (user + system "
        "time from /proc, with child processes; `load` is the load generator, on the same cores):"
    )
    report.table(*_cpu_table(figures))
    report.line_plot(
        "contention_throughput", "Bids answered per second vs concurrent bidders", "bidders", "bids/s",
        _series(figures, "rps"), logx=True,
    )  # fmt: skip
    report.line_plot(
        "contention_p99", "p99 latency vs concurrent bidders", "bidders", "p99 ms",
        _series(figures, "p99_ms"), logx=True,
    )  # fmt: skip
    report.heading("Locust (FastHttpUser) against the Lua path", level=3)
    if "error" in locust:
        report.text(f"Locust did not produce statistics: `{locust['error'][:300]}`")
        return
    keys = ["users", "seconds", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "verdict"]
    report.table(keys, [[locust[k] for k in keys]])
    report.text(
        "Locust's own CPU use caps it well below the lean generator on this 2-core machine; "
        "it is here to show the same war through a standard tool."
    )


def _cpu_table(figures: list[RunFigures]) -> tuple[list[str], list[list[object]]]:
    names: list[str] = []
    for f in figures:
        names += [n for n in (f.cpu_us_per_bid or {}) if n not in names]
    rows: list[list[object]] = [
        [f.target, f.concurrency, f.rps, *((f.cpu_us_per_bid or {}).get(n, "") for n in names)]
        for f in figures
    ]
    return ["target", "bidders", "bids/s", *(f"{n} µs/bid" for n in names)], rows


def _write_stack(report: Report, stack: stack_war.StackFigures, figures: list[RunFigures]) -> None:
    report.heading("The same war against the whole platform, as `make up` runs it", level=3)
    report.text(
        "`python -m devstack up` with its defaults (its own Redis, NATS and PostgreSQL; the bidder with "
        "its closer, relay, archiver, the edge with one worker per core, two fan-out processes), the "
        "same load generator against its edge. Every accepted bid also flows to the outbox, JetStream "
        "and PostgreSQL during the run. `/ Lua path` compares with the edge-and-bidder run of the same "
        "size above."
    )
    lua = {f.concurrency: f for f in figures if f.target == "lua"}
    rows: list[list[object]] = []
    for f in stack.runs:
        twin = lua.get(f.concurrency)
        ratio = f.rps / twin.rps if twin is not None and twin.rps else ""
        rows.append(
            [f.concurrency, f.rps, f.accepted_per_s, f.p50_ms, f.p99_ms, f.error_rate * 100, ratio, f.verdict]
        )
    report.table(
        ["bidders", "bids/s", "accepted/s", "p50 ms", "p99 ms", "errors %", "/ Lua path", "verdict"], rows
    )
    report.table(*_cpu_table(stack.runs))
    idle: list[list[object]] = [[name, f"{cores * 1000:.0f}"] for name, cores in stack.idle_cores.items()]
    report.text(
        f"Idle cost with no traffic, over {stack.idle_seconds:g} s, in thousandths of one core "
        "(one clock tick of 10 ms in 5 s reads as 2):"
    )
    report.table(["component", "millicores"], idle)


def _write_grpc(report: Report, grpc_figures: list[RunFigures], rest_figures: list[RunFigures]) -> None:
    report.heading("The same war over gRPC, straight to the bidder (Lua)", level=3)
    report.text(
        "For internal callers that skip the REST edge. One load process, one HTTP/2 channel, N bidders "
        "topping every answer's min_next_bid (a rejection's too). `unary`: one PlaceBid call per bid. "
        "`batched`: the caller's concurrent bids share PlaceBids calls, as the edge does (no timer: a lone "
        "bid goes at once); each bid still gets its own outcome. The ratio compares with the REST Lua "
        "run of the same size in this report."
    )
    rest = {f.concurrency: f for f in rest_figures if f.target == "lua"}
    rows: list[list[object]] = []
    for f in grpc_figures:
        twin = rest.get(f.concurrency)
        ratio = f.rps / twin.rps if twin is not None and twin.rps else None
        rows.append(
            [f.target.removeprefix("grpc-"), f.concurrency, f.rps, f.accepted_per_s, f.p50_ms, f.p99_ms,
             f.error_rate * 100, ratio if ratio is not None else "", f.verdict]
        )  # fmt: skip
    headers = ["mode", "bidders", "bids/s", "accepted/s", "p50 ms", "p99 ms", "errors %", "/ REST Lua"]
    report.table([*headers, "verdict"], rows)
