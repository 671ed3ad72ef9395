"""Experiment 3a: one of two fan-out processes is killed (SIGKILL) while viewers watch a bidding stream.

Viewers are SDK `watch_item` streams (reconnect with backoff and jitter, resume with `since`). After the
stream: the share of viewers that had to reconnect, how long their reconnection took (kill to the first
event received on the new connection), and the events each viewer missed, which must be zero.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from auction.live import BidPlaced, ItemStream, Reset, Snapshot, watch_item
from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.http_load import percentile
from auction_bench.report import Report
from devstack.child import discard
from devstack.ports import free_port
from devstack.servers import RedisServer
from devstack.services import bidder_process
from devstack.services_fanout import fanout_process

SCALES = {"full": (400, 20.0, 12.0), "quick": (200, 20.0, 8.0), "tiny": (20, 10.0, 3.0)}


@dataclass
class Failover:
    viewers: int
    bids: int
    reconnected: int
    reconnect_p50_ms: float
    reconnect_max_ms: float
    missed_events: int
    duplicate_events: int
    resets: int


class Viewer:
    def __init__(self, url: str, item_id: str) -> None:
        self.stream: ItemStream = watch_item(url, item_id, backoff_initial=0.05, backoff_max=1.0)
        self.seqs: list[int] = []
        self.arrivals: list[tuple[float, int]] = []  # (time, connects) per bid
        # The first snapshot's seq: the events after it are what this viewer must see as events.
        self.snapshot_seq: int | None = None
        self.resets = 0

    async def run(self) -> None:
        async for event in self.stream:
            if isinstance(event, Snapshot) and self.snapshot_seq is None:
                self.snapshot_seq = event.seq
            elif isinstance(event, Reset):
                self.resets += 1
            elif isinstance(event, BidPlaced):
                self.seqs.append(event.seq)
                self.arrivals.append((time.monotonic(), self.stream.connects))


async def measure(viewers: int, rate: float, seconds: float, progress: Any = print) -> Failover:
    with tempfile.TemporaryDirectory(prefix="auction-failover-") as tmp:
        logs = Path(tmp)
        redis = RedisServer(logs / "redis")
        await redis.start()
        bidder_port, port = free_port(), free_port()
        bidder = bidder_process(
            redis.url, bidder_port, sink=discard, extra_env={"BIDDER_LOG_LEVEL": "warning"}
        )
        target = f"127.0.0.1:{bidder_port}"
        fanouts = [
            fanout_process(
                redis.url, target, port, sink=discard, name=f"fanout-{i}", log_path=logs / f"f{i}.log"
            )
            for i in range(2)
        ]
        await bidder.start()
        for f in fanouts:
            await f.start()
        channel = grpc.aio.insecure_channel(target)
        stub = bidder_pb2_grpc.BidderServiceStub(channel)
        try:
            ends = Timestamp(seconds=int(time.time()) + 3600)
            request = bidder_pb2.CreateItemRequest(
                title="Hot lot", currency="USD", starting_price=100, min_increment=10, ends_at=ends
            )
            item = (await stub.CreateItem(request)).item
            crowd = [Viewer(f"ws://127.0.0.1:{port}", item.id) for _ in range(viewers)]
            tasks = [asyncio.create_task(v.run()) for v in crowd]
            # Bidding starts once every viewer holds its snapshot (connected is not enough: a snapshot
            # read late would already hold the first bids, which the viewer then never sees as events).
            while any(v.snapshot_seq is None for v in crowd):  # noqa: ASYNC110 - polling the streams
                await asyncio.sleep(0.05)
            progress(f"  failover: {viewers} viewers connected; bidding at {rate:.0f}/s, killing one fan-out")
            total = int(rate * seconds)
            killed_at = 0.0
            amount = 100
            for n in range(total):
                await stub.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item.id, bidder="ann", amount=amount))
                amount += 10
                if n == total // 3:
                    fanouts[0].kill()
                    killed_at = time.monotonic()
                await asyncio.sleep(1 / rate)
            last_seq = total + 1
            deadline = time.monotonic() + 30
            while any(not v.seqs or v.seqs[-1] < last_seq for v in crowd) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            for v in crowd:
                await v.stream.aclose()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await channel.close(grace=None)
            for f in fanouts:
                await f.stop()
            await bidder.stop()
            await redis.stop()
    reconnect_ms = sorted(
        (next(t for t, c in v.arrivals if c > 1) - killed_at) * 1000
        for v in crowd if v.stream.connects > 1 and any(c > 1 for _, c in v.arrivals)
    )  # fmt: skip
    return Failover(
        viewers=viewers,
        bids=total,
        reconnected=sum(1 for v in crowd if v.stream.connects > 1),
        reconnect_p50_ms=percentile(reconnect_ms, 0.5),
        reconnect_max_ms=reconnect_ms[-1] if reconnect_ms else 0.0,
        missed_events=sum(
            len(set(range((v.snapshot_seq or 0) + 1, last_seq + 1)) - set(v.seqs)) for v in crowd
        ),
        resets=sum(v.resets for v in crowd),
        duplicate_events=sum(len(v.seqs) - len(set(v.seqs)) for v in crowd),
    )


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    viewers, rate, seconds = SCALES[scale]
    result = await measure(viewers, rate, seconds, progress)
    report.results["failover"] = asdict(result)
    report.heading("Experiment 3a: a fan-out process killed under load")
    report.text(
        f"{viewers} SDK viewers (`watch_item`) on one item, served by two fan-out processes sharing the "
        f"port; {result.bids} bids at {rate:.0f}/s; one fan-out process gets SIGKILL a third of the way "
        "in. Its viewers reconnect (the kernel hands them to the surviving process) and resume with `since`.",
    )
    share = result.reconnected / max(1, viewers) * 100
    verdict = (
        "nothing missed"
        if result.missed_events == 0 and result.duplicate_events == 0 and result.resets == 0
        else "EVENTS LOST"
    )
    report.table(
        ["viewers", "reconnected", "share %", "reconnect p50 ms", "reconnect max ms", "missed", "duplicates",
         "resets", "verdict"],
        [[viewers, result.reconnected, share, result.reconnect_p50_ms, result.reconnect_max_ms,
          result.missed_events, result.duplicate_events, result.resets, verdict]],
    )  # fmt: skip
