"""`python -m auction_bench.rest_war`: a bidding war on one item through the REST edge, per strategy.

It starts its own Redis, then for each target (the bare FastAPI endpoint, the edge over the Lua
bidder, the edge over the WATCH bidder) the processes under test, runs the war at each concurrency
level with the lean load generator spread over `--procs` processes, and prints bids/s and latency
percentiles. Figures from one run are comparable with each other; the machine is shared, so compare
ratios, not absolutes across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import uvloop

from auction_bench.cpu_meter import CpuMeter, per_unit
from auction_bench.http_load import WorkerResult, bidder_loop, percentile
from auction_bench.verdict import war_verdict
from devstack.child import discard
from devstack.ports import free_port
from devstack.processes import ServiceProcess, http_ok
from devstack.servers import RedisServer
from devstack.services import bidder_process, edge_process
from devstack.tokens import mint_token

HOST = "127.0.0.1"


@dataclass
class RunFigures:
    target: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    accepted: int
    accepted_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_rate: float
    statuses: dict[int, int]
    watch_conflicts: int | None = None
    redis_cpu_pct: float | None = None
    slowlog_count: int | None = None
    slowlog_max_ms: float | None = None
    verdict: str = "n/a"
    # CPU microseconds per answered request of each process over the measured seconds
    # (`cpu_meter`; "load" is the load generator).
    cpu_us_per_bid: dict[str, float] | None = None


def _worker(args: tuple[int, str, list[str], float, float, int]) -> WorkerResult:
    port, path, tokens, deadline_in, measure_in, start_amount = args

    async def run() -> WorkerResult:
        result = WorkerResult()
        now = time.perf_counter()
        deadline, measure_from = now + deadline_in, now + measure_in
        await asyncio.gather(
            *(
                bidder_loop(HOST, port, path, t, start_amount, 10, deadline, measure_from, result)
                for t in tokens
            )
        )
        return result

    return uvloop.run(run())


def drive(
    port: int, path: str, tokens: list[str], duration: float, warmup: float, procs: int
) -> list[WorkerResult]:
    """Run the war from `procs` processes at once; each takes a share of the bidders."""
    shares = [tokens[i::procs] for i in range(procs) if tokens[i::procs]]
    jobs = [(port, path, share, warmup + duration, warmup, 100) for share in shares]
    if len(jobs) == 1:
        return [_worker(jobs[0])]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        return pool.map(_worker, jobs)


def summarize(target: str, concurrency: int, duration: float, results: list[WorkerResult]) -> RunFigures:
    latencies = sorted(x for r in results for x in r.latencies_ms)
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    errors = sum(r.errors for r in results) + sum(c for s, c in statuses.items() if s not in (201, 409))
    requests = len(latencies)
    accepted = statuses.get(201, 0)
    return RunFigures(
        target=target,
        concurrency=concurrency,
        seconds=duration,
        requests=requests,
        rps=requests / duration,
        accepted=accepted,
        accepted_per_s=accepted / duration,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else float("nan"),
        error_rate=errors / max(1, requests),
        statuses=statuses,
    )


async def create_item(base_url: str, secret: str) -> str:
    token = mint_token(secret, "bench-admin", "admin", ttl_seconds=3600)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        response = await client.post(
            f"{base_url}/items",
            json={
                "title": "Hot lot",
                "currency": "USD",
                "starting_price": 100,
                "min_increment": 10,
                "ends_at": "2099-01-01T00:00:00Z",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return str(response.json()["id"])


async def watch_conflicts(metrics_url: str | None) -> int | None:
    """The bidder's own count of WATCH transactions aborted by a concurrent write (from /metrics)."""
    if metrics_url is None:
        return None
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        text = (await client.get(metrics_url)).text
    for line in text.splitlines():
        if line.startswith("bidder_watch_conflicts_total "):
            return int(float(line.split()[1]))
    return 0


async def bench(
    targets: list[str],
    levels: list[int],
    duration: float,
    warmup: float,
    procs: int,
    on_run: Callable[[RunFigures], None] | None = None,
    edge_workers: int = 1,
) -> list[RunFigures]:
    """Each target, each concurrency level, one fresh item per run; figures and verdicts per run."""
    secret = secrets.token_urlsafe(32)
    tokens = [mint_token(secret, f"bidder{i}", "bidder", ttl_seconds=7200) for i in range(max(levels))]
    figures: list[RunFigures] = []
    with tempfile.TemporaryDirectory(prefix="auction-bench-") as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        await redis.start()
        probe = RedisProbe(redis.url)
        await probe.configure()
        try:
            for target in targets:
                processes, metrics = target_processes(target, redis.url, secret, Path(tmp), edge_workers)
                for p in processes:
                    await p.start()
                try:
                    port = int(processes[-1].endpoint.rsplit(":", 1)[1])  # type: ignore[union-attr]
                    base_url = f"http://{HOST}:{port}"
                    for level in levels:
                        item_id = "bench" if target == "bare" else await create_item(base_url, secret)
                        path = f"/items/{item_id}/bid"
                        conflicts_before = await watch_conflicts(metrics)
                        cpu_before = await probe.start_run()
                        meter = CpuMeter({"redis": redis.pid, **{p.name: p.pid for p in processes}})
                        driving = asyncio.create_task(
                            asyncio.to_thread(drive, port, path, tokens[:level], duration, warmup, procs)
                        )
                        await asyncio.sleep(warmup)
                        meter.start()
                        await asyncio.sleep(duration)
                        spent = meter.seconds()
                        results = await driving
                        run = summarize(target, level, duration, results)
                        run.cpu_us_per_bid = per_unit(spent, run.requests)
                        run.redis_cpu_pct, run.slowlog_count, run.slowlog_max_ms = await probe.end_run(
                            cpu_before, duration + warmup
                        )
                        conflicts_after = await watch_conflicts(metrics)
                        if conflicts_before is not None and conflicts_after is not None:
                            run.watch_conflicts = conflicts_after - conflicts_before
                        if target != "bare":
                            accepted = [a for r in results for a in r.accepted]
                            run.verdict = str(war_verdict(accepted, await get_item(base_url, item_id), 10))
                        figures.append(run)
                        if on_run is not None:
                            on_run(run)
                finally:
                    for p in reversed(processes):
                        await p.stop()
        finally:
            await probe.close()
            await redis.stop()
    return figures


async def get_item(base_url: str, item_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        response = await client.get(f"{base_url}/items/{item_id}")
        response.raise_for_status()
        item: dict[str, object] = response.json()
        return item


class RedisProbe:
    """Redis's own view of a run: CPU seconds from INFO cpu, slow commands from SLOWLOG."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, decode_responses=True)

    async def configure(self) -> None:
        await self._redis.config_set("slowlog-log-slower-than", 1000)  # 1 ms
        await self._redis.config_set("slowlog-max-len", 1024)

    async def _cpu(self) -> float:
        info = await self._redis.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    async def start_run(self) -> float:
        await self._redis.slowlog_reset()
        return await self._cpu()

    async def end_run(self, cpu_before: float, seconds: float) -> tuple[float, int, float]:
        cpu_pct = (await self._cpu() - cpu_before) / seconds * 100
        entries = await self._redis.slowlog_get(1024)
        slowest = max((e["duration"] for e in entries), default=0) / 1000
        return cpu_pct, len(entries), slowest

    async def close(self) -> None:
        await self._redis.aclose()


def target_processes(
    target: str, redis_url: str, secret: str, tmp: Path, edge_workers: int = 1
) -> tuple[list[ServiceProcess], str | None]:
    """The processes under test, the last one taking the load; and the bidder's metrics URL."""
    if target == "bare":
        port = free_port()
        ready = http_ok(f"http://{HOST}:{port}/readyz")
        env = {"BARE_PORT": str(port)}
        bare = ServiceProcess(
            "bare", "auction_bench.bare_app", env, ready, sink=discard, endpoint=f"http://{HOST}:{port}"
        )
        return [bare], None
    bidder_port, edge_port, metrics_port = free_port(), free_port(), free_port()
    bidder_env = {"BIDDER_LOG_LEVEL": "warning", "BIDDER_METRICS_PORT": str(metrics_port)}
    bidder = bidder_process(
        redis_url, bidder_port, strategy=target, sink=discard, log_path=tmp / f"{target}-bidder.log",
        extra_env=bidder_env,
    )  # fmt: skip
    edge = edge_process(
        f"{HOST}:{bidder_port}", edge_port, secret, sink=discard, log_path=tmp / f"{target}-edge.log",
        extra_env={"EDGE_LOG_LEVEL": "warning", "EDGE_WORKERS": str(edge_workers)},
    )  # fmt: skip
    return [bidder, edge], f"http://{HOST}:{metrics_port}/metrics"


HEADER = (
    f"{'target':<8}{'conc':>6}{'bids/s':>10}{'accepted/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    f"{'err %':>8}{'WATCH conflicts':>17}{'redis cpu %':>13}  verdict"
)


def _print_row(run: RunFigures) -> None:
    cpu = " ".join(f"{name}={us:.0f}" for name, us in (run.cpu_us_per_bid or {}).items())
    print(
        f"{run.target:<8}{run.concurrency:>6}{run.rps:>10.0f}{run.accepted_per_s:>12.0f}"
        f"{run.p50_ms:>9.2f}{run.p95_ms:>9.2f}{run.p99_ms:>9.2f}{run.error_rate * 100:>8.2f}"
        f"{'' if run.watch_conflicts is None else run.watch_conflicts:>17}"
        f"{run.redis_cpu_pct or 0:>13.0f}  {run.verdict}  cpu us/bid: {cpu}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default="bare,lua,watch", help="comma list of bare, lua, watch")
    parser.add_argument("--concurrency", default="10,50,200", help="comma list of concurrent bidders")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--edge-workers", type=int, default=1, help="edge gateway processes (EDGE_WORKERS)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    print(HEADER, flush=True)
    levels = [int(x) for x in ns.concurrency.split(",")]
    targets = [t for t in ns.targets.split(",") if t]
    figures = asyncio.run(
        bench(targets, levels, ns.duration, ns.warmup, ns.procs, _print_row, edge_workers=ns.edge_workers)
    )
    if ns.json:
        ns.json.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    _print_ratios(figures)
    return 0


def _print_ratios(figures: list[RunFigures]) -> None:
    by = {(f.target, f.concurrency): f for f in figures}
    for (target, level), run in sorted(by.items()):
        if target == "lua":
            bare = by.get(("bare", level))
            watch = by.get(("watch", level))
            if bare:
                print(f"lua/bare bids/s at {level}: {run.rps / bare.rps:.2f}")
            if watch and watch.accepted_per_s:
                print(
                    f"lua/watch at {level}: bids/s {run.rps / watch.rps:.2f}, "
                    f"accepted/s {run.accepted_per_s / watch.accepted_per_s:.2f}"
                )


if __name__ == "__main__":
    sys.exit(main())
