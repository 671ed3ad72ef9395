"""`python -m auction_bench.archive_bench`: archive throughput, catch-up after outages, POST /bid latency.

It starts its own Redis, NATS (JetStream) and PostgreSQL, then the bidder, the edge (with its history
target), the relay and the archiver as processes, and measures:

1. Throughput: with the relay stopped, `--prefill` bids are placed (PlaceBids, many items); then the
   relay starts and the clock runs until PostgreSQL holds them all: events/s from outbox to committed rows.
2. For each outage in `--outages` (`postgres-kill`, `postgres-freeze`, `nats-kill`, `nats-freeze`, or
   `-stop` for a graceful stop), under a steady REST load (`--items` x `--rate` bids/s through the edge,
   from a separate process): POST /bid answers per second and p50/p99 before, during and after, and a
   timeline of them; the backlog at recovery, and the catch-up time until every bid accepted before
   recovery is archived. `kill` is a SIGKILL of the server and every process it forked (PostgreSQL then
   runs crash recovery on restart, same port and data); `freeze` is a SIGSTOP of all of them, then
   SIGCONT: connections stay open and nothing answers, the nastier case for clients.

At the end the archive must equal the accepted bids exactly. Figures from one run compare with each
other; the machine is shared, so compare ratios rather than absolutes across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
import grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.archive_load import READY_LINE
from auction_bench.archive_outage import Outage, kinds, outage
from auction_bench.grpc_items import create_items
from auction_bench.outage_figures import phases, timeline
from devstack.child import discard
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.servers import NatsServer, PostgresServer, RedisServer, ServerProcess
from devstack.services import bidder_process, edge_process
from devstack.services_archive import archiver_process, relay_process
from devstack.tokens import SECRET_ENV

HOST = "127.0.0.1"


@dataclass
class Figures:
    prefill_events: int
    prefill_seconds: float
    throughput_events_per_s: float
    outages: list[Outage] = field(default_factory=list)
    rate_per_item: float = 0.0
    items: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    accepted: int = 0
    archived: int = 0
    exact: bool = False
    missing: int = 0  # accepted but not archived
    extra: int = 0  # archived but never accepted (or archived twice)


@dataclass
class Stack:
    tmp: Path
    redis: RedisServer
    nats: NatsServer
    postgres: PostgresServer
    bidder_target: str
    edge_url: str
    secret: str
    relay: ServiceProcess
    archiver: ServiceProcess
    processes: list[ServiceProcess]


async def start_stack(tmp: Path, partitions: int) -> Stack:
    redis, nats = RedisServer(tmp / "redis"), NatsServer(tmp / "nats")
    postgres = PostgresServer(tmp / "postgres")
    for server in (redis, nats, postgres):
        await server.start()
    secret = secrets.token_urlsafe(32)
    bidder_port, edge_port, archiver_port = free_port(), free_port(), free_port()
    bidder = bidder_process(
        redis.url, bidder_port, partitions=partitions, sink=discard, log_path=tmp / "bidder.log",
        extra_env={"BIDDER_LOG_LEVEL": "warning"},
    )  # fmt: skip
    relay = relay_process(
        redis.url, nats.url, free_port(), partitions=partitions, consumer="bench-relay", sink=discard,
        log_path=tmp / "relay.log", extra_env={"RELAY_LOG_LEVEL": "warning"},
    )  # fmt: skip
    archiver = archiver_process(
        nats.url, postgres.dsn, archiver_port, sink=discard,
        log_path=tmp / "archiver.log", extra_env={"ARCHIVER_LOG_LEVEL": "warning"},
    )  # fmt: skip
    edge = edge_process(
        f"{HOST}:{bidder_port}", edge_port, secret, sink=discard, log_path=tmp / "edge.log",
        extra_env={"EDGE_LOG_LEVEL": "warning", "EDGE_HISTORY_TARGET": f"{HOST}:{archiver_port}"},
    )  # fmt: skip
    processes = [bidder, relay, archiver, edge]
    for process in processes:
        await process.start()
    return Stack(
        tmp, redis, nats, postgres, f"{HOST}:{bidder_port}", f"http://{HOST}:{edge_port}", secret, relay,
        archiver, processes,
    )  # fmt: skip


async def stop_stack(stack: Stack) -> None:
    for process in reversed(stack.processes):
        await process.stop()
    for server in (stack.postgres, stack.nats, stack.redis):
        await server.stop()
    stack.postgres.remove_cluster()


async def archived_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM bids"))


async def prefill(
    stack: Stack, stub: bidder_pb2_grpc.BidderServiceAsyncStub, events: int
) -> tuple[int, float]:
    """Bids placed with the relay stopped, then the time from relay start to all of them archived."""
    await stack.relay.stop()
    items = await create_items(stub, 50)
    per_call, placed, amount = 500, 0, 100
    while placed < events:
        bids = [
            bidder_pb2.PlaceBidRequest(item_id=items[i % len(items)], bidder="filler", amount=amount + i)
            for i in range(per_call)
        ]
        reply = await stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=bids))
        placed += sum(1 for outcome in reply.outcomes if outcome.HasField("accepted"))
        amount += per_call
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        started = time.perf_counter()
        await stack.relay.start()
        await wait_for_count(conn, placed, 600)
        return placed, time.perf_counter() - started
    finally:
        await conn.close()


async def wait_for_count(conn: asyncpg.Connection, target: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await archived_count(conn) >= target:
            return
        await asyncio.sleep(0.05)


async def bench(ns: argparse.Namespace) -> Figures:
    outages = kinds(ns.outages)
    with tempfile.TemporaryDirectory(prefix="auction-archive-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        stack = await start_stack(tmp, ns.partitions)
        channel = grpc.aio.insecure_channel(stack.bidder_target)
        try:
            stub = bidder_pb2_grpc.BidderServiceStub(channel)
            placed, seconds = await prefill(stack, stub, ns.prefill)
            figures = Figures(placed, seconds, placed / seconds)
            print(f"throughput: {placed} events archived in {seconds:.2f}s = {placed / seconds:.0f} events/s")
            items = await create_items(stub, ns.items)
            out = tmp / "load.json"
            load = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "auction_bench.archive_load", "--rest", stack.edge_url,
                "--items", ",".join(items), "--rate", str(ns.rate), "--out", str(out),
                env={**os.environ, SECRET_ENV: stack.secret}, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                assert load.stdout is not None
                assert (await load.stdout.readline()).decode().strip() == READY_LINE
                figures.rate_per_item, figures.items = ns.rate, ns.items
                await asyncio.sleep(1.0)  # connections open, tokens minted: the first window is steady
                servers: dict[str, ServerProcess] = {"nats": stack.nats, "postgres": stack.postgres}
                for kind in outages:
                    figures.outages.append(await outage(servers, stack.postgres.dsn, stub, items, kind, ns))
            finally:
                load.terminate()
                await load.communicate()
            record = json.loads(out.read_text())
            figures.errors, figures.error_samples = len(record["errors"]), record["errors"][:5]
            for result in figures.outages:
                result.phases = phases(result.marks, record["samples"])
                result.timeline = timeline(result.marks, record["samples"], ns.bucket)
                print_outage(result)
            await verify(stack, record["accepted"], figures)
            return figures
        finally:
            await channel.close(grace=None)
            await stop_stack(stack)


async def verify(stack: Stack, accepted: list[list[object]], figures: Figures) -> None:
    """The archive holds exactly the accepted bids of the load (prefill bids are on other items)."""
    items = sorted({str(row[0]) for row in accepted})
    conn = await asyncpg.connect(stack.postgres.dsn)
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = await conn.fetch(
                "SELECT item_id, seq, bid_id, bidder, amount FROM bids WHERE item_id = ANY($1::text[])", items
            )
            if len(rows) >= len(accepted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    want = Counter(tuple(row) for row in accepted)
    got = Counter(tuple(row) for row in rows)
    figures.accepted, figures.archived = want.total(), got.total()
    figures.missing, figures.extra = (want - got).total(), (got - want).total()
    figures.exact = want == got
    print(
        f"accepted {figures.accepted}, archived {figures.archived}, identical: {figures.exact} "
        f"(missing {figures.missing}, extra {figures.extra})"
    )


def print_outage(result: Outage) -> None:
    state = "caught up" if result.caught_up else "NOT caught up"
    print(
        f"{result.kind}: down {result.seconds:.1f}s, backlog {result.backlog} events, {state} in "
        f"{result.catch_up_seconds:.2f}s ({result.catch_up_events_per_s:.0f} events/s)"
    )
    for phase in result.phases:
        p50, p99 = f"{phase.p50_ms:7.2f}", f"{phase.p99_ms:7.2f}"
        rate = f"{phase.bids_per_s:7.1f}"
        print(f"  POST /bid {phase.name:<7} n={phase.bids:<6} {rate} bids/s  p50 {p50} ms  p99 {p99} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefill", type=int, default=50_000, help="events for the throughput phase")
    parser.add_argument("--items", type=int, default=10, help="items under steady load")
    parser.add_argument("--rate", type=float, default=50.0, help="bids/s per item (steady load)")
    parser.add_argument(
        "--outages",
        default="postgres-kill,postgres-freeze,nats-kill,nats-freeze",
        help="comma list of <postgres|nats>-<kill|freeze|stop>",
    )
    parser.add_argument("--outage", type=float, default=20.0, help="seconds each outage lasts")
    parser.add_argument("--before", type=float, default=15.0, help="seconds measured before an outage")
    parser.add_argument(
        "--after", type=float, default=15.0, help="seconds measured after recovery (at least)"
    )
    parser.add_argument("--max-catch-up", type=float, default=300.0, help="give up waiting after this")
    parser.add_argument("--bucket", type=float, default=1.0, help="seconds per point of the timeline")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    figures = asyncio.run(bench(ns))
    if ns.json:
        ns.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0 if figures.exact else 1


if __name__ == "__main__":
    sys.exit(main())
