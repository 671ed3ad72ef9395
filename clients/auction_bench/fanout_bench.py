"""`python -m auction_bench.fanout_bench`: broadcast latency, CPU and memory of the WebSocket fan-out.

It starts its own Redis and bidder, then for each viewer count N: fresh fan-out processes sharing one
port, one item, N lean viewers spread over worker processes (see `fanout_viewers`), and three phases:

1. idle: the fan-out processes' RSS with N idle viewers, minus their RSS before any viewer, per viewer;
2. single bids: `--bids` bids one at a time, far enough apart that each is broadcast alone; latency is
   arrival at each viewer minus the moment the bidder's answer reached the benchmark (the bid's
   acceptance as the bidder reports it; an arrival can precede it, giving a negative latency at small N);
3. steady stream: `--rate` bids/s for `--stream-seconds`; every viewer must get every seq once, in order.

CPU is the fan-out processes' user+system time from /proc over each phase. Every run is bounded in time.
Figures are for this machine with clients, bidder, Redis and fan-out all sharing its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.fanout_viewers import Tally, raise_file_limit, worker
from auction_bench.grpc_items import create_items
from auction_bench.http_load import percentile
from devstack.child import discard
from devstack.ports import LOCALHOST, free_port
from devstack.processes import ServiceProcess
from devstack.servers import RedisServer
from devstack.services import bidder_process
from devstack.services_fanout import fanout_processes

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    viewers: int
    connected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_p50_ms: float
    socket_p99_ms: float
    socket_max_ms: float
    cpu_ms_per_bid: float
    system_share: float
    client_cpu_ms_per_bid: float
    stream_cpu_pct: float
    rss_kib_per_viewer: float
    stream_events: int
    stream_p99_ms: float
    stream_socket_p99_ms: float
    dropped: int
    repeated: int
    missing: int
    closed: int

    @property
    def floor_ms(self) -> float:
        """The least time all viewers can have a bid: the CPU the fan-out and the viewers spend on it,
        spread perfectly over every core of this machine (they share it)."""
        return (self.cpu_ms_per_bid + self.client_cpu_ms_per_bid) / (os.cpu_count() or 1)


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Bidding:
    """Places bids one at a time on one item; records when each accepted bid's answer arrived."""

    def __init__(self, stub: bidder_pb2_grpc.BidderServiceAsyncStub, item_id: str) -> None:
        self.stub = stub
        self.item_id = item_id
        self.amount = 100
        self.accepted_at: dict[int, float] = {}

    async def one(self) -> int:
        request = bidder_pb2.PlaceBidRequest(item_id=self.item_id, bidder="bench", amount=self.amount)
        reply = await self.stub.PlaceBid(request, timeout=10)
        self.accepted_at[reply.seq] = time.monotonic()
        self.amount = reply.item.min_next_bid
        return reply.seq


async def run_one(n: int, ns: argparse.Namespace, redis_url: str, bidder_target: str, logs: Path) -> Figures:
    port = free_port()
    env = {
        "FANOUT_LOG_LEVEL": "warning",
        "FANOUT_BROADCAST": ns.broadcast,
        "FANOUT_MAX_CONNECTIONS": "20000",
    }
    fanouts = fanout_processes(
        ns.fanouts, redis_url, bidder_target, port, sink=discard, log_dir=logs, extra_env=env
    )
    for process in fanouts:
        process.start_timeout = 60
        await process.start()
    pids = [p.pid for p in fanouts if p.pid is not None]
    channel = grpc.aio.insecure_channel(bidder_target)
    stub = bidder_pb2_grpc.BidderServiceStub(channel)
    context = multiprocessing.get_context("spawn")
    workers: list[tuple[multiprocessing.context.SpawnProcess, Connection]] = []
    try:
        (item_id,) = await create_items(stub, 1, min_increment=10)
        await asyncio.sleep(0.5)
        rss_before = sum(rss_kib(pid) for pid in pids)
        procs = max(1, min(ns.client_procs, -(-n // 250)))
        niceness = ns.client_nice
        for index in range(procs):
            share = n // procs + (1 if index < n % procs else 0)
            here, there = context.Pipe()
            args = (there, LOCALHOST, port, [item_id], share, niceness)
            proc = context.Process(target=worker, args=args, daemon=True)
            proc.start()
            workers.append((proc, here))
        connected = 0
        for _, pipe in workers:
            message = await asyncio.to_thread(pipe.recv)
            connected += message[1]
        await asyncio.sleep(1.0)
        rss_after = sum(rss_kib(pid) for pid in pids)

        bidding = Bidding(stub, item_id)
        gap = max(0.2, n / 15_000)
        cpu0 = sum(cpu_seconds(pid) for pid in pids)
        sys0 = sum(cpu_split(pid)[1] for pid in pids)
        client_pids = [proc.pid for proc, _ in workers if proc.pid is not None]
        client0 = sum(cpu_seconds(pid) for pid in client_pids)
        single: list[int] = []
        for _ in range(ns.bids):
            single.append(await bidding.one())
            await asyncio.sleep(gap)
        cpu1 = sum(cpu_seconds(pid) for pid in pids)
        sys1 = sum(cpu_split(pid)[1] for pid in pids)
        client1 = sum(cpu_seconds(pid) for pid in client_pids)

        stream: list[int] = []
        started = time.monotonic()
        interval = 1 / ns.rate
        for i in range(int(ns.rate * ns.stream_seconds)):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stream.append(await bidding.one())
        elapsed = time.monotonic() - started
        cpu2 = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(max(1.0, n / 5000))

        tallies: list[Tally] = []
        for _, pipe in workers:
            pipe.send("report")
        for _, pipe in workers:
            tallies.append((await asyncio.to_thread(pipe.recv))[item_id])
    finally:
        for proc, _ in workers:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        await channel.close(grace=None)
        for process in reversed(fanouts):
            await process.stop()

    def latencies(seqs: list[int], at_socket: bool = False) -> list[float]:
        values: list[float] = []
        for seq in seqs:
            accepted = bidding.accepted_at[seq]
            for tally in tallies:
                times = (tally.socket_arrivals if at_socket else tally.arrivals).get(seq, ())
                values.extend((t - accepted) * 1000 for t in times)
        values.sort()
        return values

    single_ms, stream_ms = latencies(single), latencies(stream)
    socket_ms, stream_socket_ms = latencies(single, at_socket=True), latencies(stream, at_socket=True)
    last = stream[-1]
    return Figures(
        viewers=n,
        connected=connected,
        p50_ms=percentile(single_ms, 0.50),
        p99_ms=percentile(single_ms, 0.99),
        max_ms=single_ms[-1] if single_ms else float("nan"),
        socket_p50_ms=percentile(socket_ms, 0.50),
        socket_p99_ms=percentile(socket_ms, 0.99),
        socket_max_ms=socket_ms[-1] if socket_ms else float("nan"),
        cpu_ms_per_bid=(cpu1 - cpu0) * 1000 / max(1, len(single)),
        system_share=(sys1 - sys0) / max(cpu1 - cpu0, 1e-9),
        client_cpu_ms_per_bid=(client1 - client0) * 1000 / max(1, len(single)),
        stream_cpu_pct=(cpu2 - cpu1) * 100 / elapsed,
        rss_kib_per_viewer=(rss_after - rss_before) / max(1, connected),
        stream_events=len(stream),
        stream_p99_ms=percentile(stream_ms, 0.99),
        stream_socket_p99_ms=percentile(stream_socket_ms, 0.99),
        dropped=sum(t.gaps for t in tallies),
        repeated=sum(t.repeats for t in tallies),
        missing=sum(1 for t in tallies for s in t.last_seqs if s != last),
        closed=sum(t.closed for t in tallies),
    )


HEADER = (
    f"{'viewers':>8}{'conn':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'sock p50':>9}{'sock p99':>9}"
    f"{'sock max':>9}{'cpu ms/bid':>11}{'sys %':>6}"
    f"{'clients ms/bid':>15}{'floor ms':>9}"
    f"{'cpu% 50/s':>10}{'KiB/viewer':>11}{'stream ev':>10}{'str sock p99':>13}{'str p99':>9}"
    f"{'dropped':>8}{'reord/dup':>10}"
    f"{'behind':>7}{'closed':>7}"
)


def row(f: Figures) -> str:
    return (
        f"{f.viewers:>8}{f.connected:>7}{f.p50_ms:>8.1f}{f.p99_ms:>8.1f}{f.max_ms:>8.1f}"
        f"{f.socket_p50_ms:>9.1f}{f.socket_p99_ms:>9.1f}{f.socket_max_ms:>9.1f}"
        f"{f.cpu_ms_per_bid:>11.1f}{f.system_share * 100:>6.0f}"
        f"{f.client_cpu_ms_per_bid:>15.1f}{f.floor_ms:>9.1f}"
        f"{f.stream_cpu_pct:>10.1f}{f.rss_kib_per_viewer:>11.1f}"
        f"{f.stream_events:>10}{f.stream_socket_p99_ms:>13.1f}{f.stream_p99_ms:>9.1f}{f.dropped:>8}{f.repeated:>10}{f.missing:>7}{f.closed:>7}"
    )


async def bench(ns: argparse.Namespace) -> list[Figures]:
    raise_file_limit()
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="auction-fanout-bench-") as tmp:
        logs = Path(tmp)
        redis = RedisServer(logs / "redis")
        await redis.start()
        bidder_port = free_port()
        bidder: ServiceProcess = bidder_process(
            redis.url, bidder_port, sink=discard, log_path=logs / "bidder.log",
            extra_env={"BIDDER_LOG_LEVEL": "warning"},
        )  # fmt: skip
        try:
            await bidder.start()
            for n in (int(x) for x in ns.viewers.split(",")):
                async with asyncio.timeout(ns.run_timeout):
                    result = await run_one(n, ns, redis.url, f"{LOCALHOST}:{bidder_port}", logs)
                figures.append(result)
                print(row(result), flush=True)
        finally:
            await bidder.stop()
            await redis.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", default="100,1000,10000", help="comma list of viewer counts")
    parser.add_argument("--fanouts", type=int, default=2, help="fan-out processes sharing the port")
    parser.add_argument("--client-procs", type=int, default=4, help="viewer worker processes (at most)")
    parser.add_argument("--bids", type=int, default=30, help="single bids for the latency figures")
    parser.add_argument("--rate", type=float, default=50.0, help="bids/s in the steady stream")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="length of the steady stream")
    parser.add_argument("--client-nice", type=int, default=0, help="niceness of the viewer processes")
    parser.add_argument("--broadcast", choices=("library", "frame"), default="frame")
    parser.add_argument("--run-timeout", type=float, default=240.0, help="seconds allowed per viewer count")
    ns = parser.parse_args(argv)
    print(
        f"fan-out processes: {ns.fanouts}, broadcast: {ns.broadcast}, client processes <= {ns.client_procs},"
        f" {os.cpu_count()} CPUs; latency = arrival - bidder's answer;"
        " 'behind' = viewers not at the last seq",
        flush=True,
    )
    print(HEADER, flush=True)
    asyncio.run(bench(ns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
