"""`python -m auction_bench.mixed_scale`: bidders and viewers at once, the edge and fan-out as N processes.

It starts its own Redis and bidder, then for each instance count N: the edge with N uvicorn workers and N
fan-out processes sharing one port (SO_REUSEPORT), `--items` fresh items, `--viewers` lean WebSocket
viewers spread over them (one worker process, `fanout_viewers`), and at the same time a REST bidding war
on every item (`--bidders` in all, the lean load generator of `http_load`, reading `min_next_bid` from
each answer). Per N: bids/s and bid latency, broadcast latency (arrival at each viewer minus the moment
the bid's 201 reached its bidder, both on the system-wide monotonic clock, as `fanout_bench` does; the
arrival both as the kernel stamped it on the viewer's socket and as the viewers' process read it), every
viewer's stream checked for gaps and repeats, the bids' correctness verdict per item, and the CPU the
edge, the fan-out and the whole machine used during the war.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

from auction_bench.fanout_viewers import Tally, raise_file_limit
from auction_bench.fanout_viewers import worker as viewer_worker
from auction_bench.http_load import WorkerResult, bidder_loop, percentile
from auction_bench.rest_war import create_item, get_item
from auction_bench.verdict import war_verdict
from devstack.child import discard
from devstack.ports import LOCALHOST, free_port
from devstack.processes import ServiceProcess
from devstack.server_base import process_tree
from devstack.servers import RedisServer
from devstack.services import bidder_process, edge_process
from devstack.services_fanout import fanout_processes
from devstack.tokens import mint_token

INCREMENT = 10  # rest_war.create_item's min_increment
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class MixedFigures:
    instances: int
    items: int
    bidders: int
    viewers: int
    connected: int
    seconds: float
    requests: int
    bids_per_s: float
    accepted_per_s: float
    bid_p50_ms: float
    bid_p99_ms: float
    bid_errors: int
    broadcasts: int  # (bid, viewer) arrivals measured
    # Arrival at the viewer's socket (kernel receive timestamp) minus acceptance.
    broadcast_p50_ms: float
    broadcast_p99_ms: float
    broadcast_max_ms: float
    # Arrival as the viewers' process read it: adds that process's wait for a core, behind all its viewers.
    read_p50_ms: float
    read_p99_ms: float
    dropped: int
    repeated: int
    behind: int  # viewers not at their item's last seq at the end
    closed: int  # viewers the server closed (e.g. 1013, too slow)
    # CPU during the war, % of one core: the edge, fan-out, bidder, Redis, and the load itself (the
    # bidding war's client, the viewers' process); "machine" is every core's busy time (200 = 2 cores).
    cpu_pct: dict[str, float]
    machine_busy_pct: float
    verdict: str

    @property
    def viewers_ok(self) -> bool:
        return self.connected == self.viewers and not (
            self.dropped or self.repeated or self.behind or self.closed
        )


def _cpu(pids: list[int], *, descendants: bool = True) -> float:
    """User+system CPU seconds of these processes (and their descendants: uvicorn's workers)."""
    total = 0.0
    for root in pids:
        for pid in process_tree(root) if descendants else [root]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _bid_worker(args: tuple[int, list[tuple[str, str]], float, float]) -> dict[str, WorkerResult]:
    """The war on every item from one process: one `bidder_loop` per (item, token), a result per item."""
    port, assignments, deadline_in, measure_in = args

    async def run() -> dict[str, WorkerResult]:
        results = {item_id: WorkerResult() for item_id, _ in assignments}
        now = time.perf_counter()
        deadline, measure_from = now + deadline_in, now + measure_in
        loops = [
            bidder_loop(
                LOCALHOST,
                port,
                f"/items/{item}/bid",
                token,
                start_amount=100,
                increment=INCREMENT,
                deadline=deadline,
                measure_from=measure_from,
                result=results[item],
            )
            for item, token in assignments
        ]
        await asyncio.gather(*loops)
        return results

    return uvloop.run(run())


def _receive(pipe: Connection, process: multiprocessing.context.SpawnProcess, timeout: float) -> Any:
    """The viewers' next message; raises if their process died or stayed silent (never blocks for ever)."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(0.2):
        if not process.is_alive():
            raise RuntimeError(f"the viewers' process exited ({process.exitcode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the viewers' process said nothing in {timeout:.0f} s")
    return pipe.recv()


def broadcast_latencies(
    results: dict[str, WorkerResult], tallies: dict[str, Tally], *, socket: bool
) -> np.ndarray:
    """Arrival at every viewer minus the bid's acceptance, ms, for every accepted bid of every item:
    at the viewer's socket (`socket`) or when the viewers' process read it, sorted."""
    parts: list[np.ndarray] = []
    for item_id, result in results.items():
        tally = tallies[item_id]
        arrivals = tally.socket_arrivals if socket else tally.arrivals
        for (seq, _), accepted_at in zip(result.accepted, result.accepted_at, strict=True):
            times = arrivals.get(seq)
            if times:
                parts.append((np.frombuffer(times, dtype=np.float64) - accepted_at) * 1000)
    return np.sort(np.concatenate(parts)) if parts else np.empty(0)


async def run_one(
    count: int,
    ns: argparse.Namespace,
    redis_url: str,
    bidder_target: str,
    secret: str,
    logs: Path,
    shared_pids: dict[str, int],
) -> MixedFigures:
    fanout_port, edge_port = free_port(), free_port()
    fanouts = fanout_processes(
        count, redis_url, bidder_target, fanout_port, sink=discard, log_dir=logs,
        extra_env={"FANOUT_LOG_LEVEL": "warning"},
    )  # fmt: skip
    edge = edge_process(
        bidder_target, edge_port, secret, sink=discard, log_path=logs / "edge.log",
        extra_env={"EDGE_LOG_LEVEL": "warning", "EDGE_WORKERS": str(count)},
    )  # fmt: skip
    processes: list[ServiceProcess] = [*fanouts, edge]
    context = multiprocessing.get_context("spawn")
    viewers: multiprocessing.context.SpawnProcess | None = None
    pipe: Connection | None = None
    base_url = f"http://{LOCALHOST}:{edge_port}"
    try:
        for process in processes:
            process.start_timeout = 60
            await process.start()
        items = [await create_item(base_url, secret) for _ in range(ns.items)]
        pipe, there = context.Pipe()
        viewers = context.Process(
            target=viewer_worker, args=(there, LOCALHOST, fanout_port, items, ns.viewers), daemon=True
        )
        viewers.start()
        _, connected, _ = await asyncio.to_thread(_receive, pipe, viewers, 120)
        tokens = [mint_token(secret, f"bidder{i}", "bidder", ttl_seconds=3600) for i in range(ns.bidders)]
        assignments = [(items[i % len(items)], token) for i, token in enumerate(tokens)]
        groups = {
            "edge": [p for p in [edge.pid] if p is not None],
            "fan-out": [p.pid for p in fanouts if p.pid is not None],
            "bidder": [shared_pids["bidder"]],
            "redis": [shared_pids["redis"]],
            "bid client": [os.getpid()],  # the war runs in a thread of this process
            "viewers": [viewers.pid] if viewers.pid is not None else [],
        }
        own = {"bid client"}  # this process: its children are the services, counted apart
        cpu_before = {k: _cpu(v, descendants=k not in own) for k, v in groups.items()}
        machine = _machine_busy()
        started = time.monotonic()
        job = (edge_port, assignments, ns.warmup + ns.seconds, ns.warmup)
        results = await asyncio.to_thread(_bid_worker, job)
        elapsed = time.monotonic() - started
        cpu = {
            k: (_cpu(v, descendants=k not in own) - cpu_before[k]) * 100 / elapsed for k, v in groups.items()
        }
        busy, total = (now - then for now, then in zip(_machine_busy(), machine, strict=True))
        await asyncio.sleep(ns.settle)  # the last broadcasts reach the viewers
        pipe.send("report")
        tallies: dict[str, Tally] = await asyncio.to_thread(_receive, pipe, viewers, 120)
        finals = {item_id: await get_item(base_url, item_id) for item_id in items}
    finally:
        if viewers is not None:
            viewers.join(timeout=10)
            if viewers.is_alive():
                viewers.kill()
        for process in reversed(processes):
            await process.stop()

    latencies = sorted(x for r in results.values() for x in r.latencies_ms)
    statuses: dict[int, int] = {}
    for r in results.values():
        for status, n in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    verdicts = {
        item_id: war_verdict(r.accepted, finals[item_id], INCREMENT) for item_id, r in results.items()
    }
    wrong = [f"{item_id}: {v}" for item_id, v in verdicts.items() if not v.ok]
    broadcast = broadcast_latencies(results, tallies, socket=True)
    read = broadcast_latencies(results, tallies, socket=False)
    final_seq = {item_id: int(str(finals[item_id]["seq"])) for item_id in items}
    return MixedFigures(
        instances=count,
        items=len(items),
        bidders=ns.bidders,
        viewers=ns.viewers,
        connected=connected,
        seconds=ns.seconds,
        requests=len(latencies),
        bids_per_s=len(latencies) / ns.seconds,
        accepted_per_s=statuses.get(201, 0) / ns.seconds,
        bid_p50_ms=percentile(latencies, 0.50),
        bid_p99_ms=percentile(latencies, 0.99),
        bid_errors=sum(r.errors for r in results.values())
        + sum(n for s, n in statuses.items() if s not in (201, 409)),
        broadcasts=int(broadcast.size),
        broadcast_p50_ms=_quantile(broadcast, 0.50),
        broadcast_p99_ms=_quantile(broadcast, 0.99),
        broadcast_max_ms=float(broadcast[-1]) if broadcast.size else float("nan"),
        read_p50_ms=_quantile(read, 0.50),
        read_p99_ms=_quantile(read, 0.99),
        dropped=sum(t.gaps for t in tallies.values()),
        repeated=sum(t.repeats for t in tallies.values()),
        behind=sum(1 for item_id, t in tallies.items() for s in t.last_seqs if s != final_seq[item_id]),
        closed=sum(t.closed for t in tallies.values()),
        cpu_pct=cpu,
        machine_busy_pct=busy / total * 100 * (os.cpu_count() or 1) if total else float("nan"),
        verdict="correct" if not wrong else "WRONG: " + "; ".join(wrong),
    )


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    if not sorted_values.size:
        return float("nan")
    return float(sorted_values[min(sorted_values.size - 1, round(q * (sorted_values.size - 1)))])


async def bench(ns: argparse.Namespace) -> list[MixedFigures]:
    raise_file_limit()
    secret = secrets.token_urlsafe(32)
    figures: list[MixedFigures] = []
    with tempfile.TemporaryDirectory(prefix="auction-mixed-bench-") as tmp:
        logs = Path(tmp)
        redis = RedisServer(logs / "redis")
        await redis.start()
        bidder_port = free_port()
        bidder = bidder_process(
            redis.url, bidder_port, sink=discard, log_path=logs / "bidder.log",
            extra_env={"BIDDER_LOG_LEVEL": "warning"},
        )  # fmt: skip
        try:
            await bidder.start()
            assert bidder.pid is not None
            assert redis.pid is not None
            shared = {"bidder": bidder.pid, "redis": redis.pid}
            target = f"{LOCALHOST}:{bidder_port}"
            for count in ns.instances:
                async with asyncio.timeout(ns.run_timeout):
                    result = await run_one(count, ns, redis.url, target, secret, logs, shared)
                figures.append(result)
                print(row(result), flush=True)
        finally:
            await bidder.stop()
            await redis.stop()
    return figures


HEADER = (
    f"{'N':>3}{'bids/s':>9}{'p50':>7}{'p99':>7}{'bcast p50':>10}{'bcast p99':>10}{'viewers':>8}"
    f"{'dropped':>8}{'reord':>6}{'behind':>7}{'closed':>7}  CPU % (one core = 100)  verdict"
)


def row(f: MixedFigures) -> str:
    return (
        f"{f.instances:>3}{f.bids_per_s:>9.0f}{f.bid_p50_ms:>7.1f}{f.bid_p99_ms:>7.1f}"
        f"{f.broadcast_p50_ms:>10.1f}{f.broadcast_p99_ms:>10.1f}{f.connected:>8}{f.dropped:>8}"
        f"{f.repeated:>6}{f.behind:>7}{f.closed:>7}  {cpu_summary(f)}  {f.verdict}"
    )


def cpu_summary(f: MixedFigures) -> str:
    parts = [f"{name} {pct:.0f}" for name, pct in f.cpu_pct.items()]
    return ", ".join(parts) + f"; machine {f.machine_busy_pct:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", default="1,2,4", help="comma list of edge/fan-out process counts")
    parser.add_argument("--items", type=int, default=4, help="items bid on and watched")
    parser.add_argument("--bidders", type=int, default=40, help="REST bidders in all (spread over items)")
    parser.add_argument("--viewers", type=int, default=1000, help="WebSocket viewers in all")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds of the war")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds for the last broadcasts")
    parser.add_argument("--run-timeout", type=float, default=240.0, help="seconds allowed per count")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    ns.instances = [int(x) for x in ns.instances.split(",")]
    print(HEADER, flush=True)
    figures = asyncio.run(bench(ns))
    if ns.json:
        ns.json.write_text(json.dumps([asdict(f) for f in figures], indent=2))
    return 0 if all(f.verdict == "correct" and f.viewers_ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
