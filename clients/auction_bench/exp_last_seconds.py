"""Experiment 4: the last seconds. A sniping war with soft close on and off, and many auctions ending at once.

Part A: `bidders` REST bidders (one edge, one bidder, own Redis) bid the minimum as fast as the platform
answers during an item's last seconds, once with a hard end and once with soft close (2 s window, 2 s
extension, cap 10 s after the first end). Reported: accepted bids, those in the final second before the
end in force, extensions, how far the end moved, the final price.

Part B: `items` items end in the same second; the bidder's closer closes them. Reported: the close delay
after each item's end (from the `closed` events), p50 / p99 / max; the goal is p99 <= 1 s.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.http_load import percentile
from auction_bench.report import Report
from auction_contract.redis_layout import item_keys
from auction_contract.wire_time import parse_ms
from devstack.child import discard
from devstack.ports import free_port
from devstack.servers import RedisServer
from devstack.services import bidder_process, edge_process
from devstack.tokens import mint_token

# (REST bidders, war seconds, items ending at once)
SCALES = {"full": (200, 3.0, 1000), "quick": (100, 3.0, 500), "tiny": (10, 1.5, 50)}
PARTITIONS = 16
SECRET = "experiment-4-jwt-secret-long-enough-for-hs256!"


@dataclass
class War:
    soft_close: bool
    accepted: int
    final_second: int
    extensions: int
    end_moved_s: float
    final_price: int


@dataclass
class Closing:
    items: int
    closed: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _ms(text: str) -> int:
    return parse_ms(text.replace("Z", "+00:00"))


async def _war(edge: str, redis: Redis, bidders: int, war_s: float, soft: bool) -> War:
    ends_at = datetime.now(UTC) + timedelta(seconds=war_s + 1)
    body: dict[str, Any] = {
        "title": "Contested lot", "currency": "USD", "starting_price": 100, "min_increment": 10,
        "ends_at": ends_at.isoformat(),
    }  # fmt: skip
    if soft:
        cap = ends_at + timedelta(seconds=10)
        body["soft_close"] = {"window_seconds": 2, "extension_seconds": 2, "max_ends_at": cap.isoformat()}
    admin = {"Authorization": f"Bearer {mint_token(SECRET, 'root', 'admin')}"}
    limits = httpx.Limits(max_connections=bidders, max_keepalive_connections=bidders)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        created = (await client.post(f"{edge}/items", json=body, headers=admin)).json()
        item_id, first_end = created["id"], _ms(created["ends_at"])
        await asyncio.sleep(0.9)

        async def bidder(name: str) -> None:
            headers = {"Authorization": f"Bearer {mint_token(SECRET, name, 'bidder')}"}
            amount = 100
            while True:
                response = await client.post(
                    f"{edge}/items/{item_id}/bid", json={"amount": amount}, headers=headers
                )
                answer = response.json()
                if response.status_code == 201:
                    amount = answer["item"]["min_next_bid"]
                elif answer.get("type") == "bid-too-low":
                    amount = answer["min_next_bid"]
                elif answer.get("type") == "auction-closed":
                    return
                else:
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(bidder(f"sniper{n}") for n in range(bidders)))
    entries: Any = await redis.xrange(item_keys(item_id, PARTITIONS).events)
    events = [orjson.loads(fields[b"e"]) for _, fields in entries]
    bids = [e for e in events if e["type"] == "bid"]
    extensions = [e for e in events if e["type"] == "extended"]
    final_end = _ms(extensions[-1]["ends_at"]) if extensions else first_end
    return War(
        soft_close=soft,
        accepted=len(bids),
        final_second=sum(1 for b in bids if final_end - _ms(b["placed_at"]) <= 1000),
        extensions=len(extensions),
        end_moved_s=(final_end - first_end) / 1000,
        final_price=bids[-1]["amount"] if bids else 0,
    )


async def _closing(stub: bidder_pb2_grpc.BidderServiceAsyncStub, redis: Redis, count: int) -> Closing:
    ends_ms = (int(time.time()) + 3) * 1000
    request = bidder_pb2.CreateItemRequest(
        title="Lot", currency="EUR", starting_price=100, min_increment=5,
        ends_at=Timestamp(seconds=ends_ms // 1000, nanos=(ends_ms % 1000) * 1_000_000),
    )  # fmt: skip
    item_ids: list[str] = []
    for start in range(0, count, 100):
        replies = await asyncio.gather(*(stub.CreateItem(request) for _ in range(min(100, count - start))))
        item_ids += [r.item.id for r in replies]
    delays: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        async with redis.pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                pipe.xrevrange(item_keys(item_id, PARTITIONS).events, count=1)
            lasts = await pipe.execute()
        closed = [orjson.loads(last[0][1][b"e"]) for last in lasts if last]
        delays = [float(_ms(e["closed_at"]) - ends_ms) for e in closed if e["type"] == "closed"]
        if len(delays) == count:
            break
    delays.sort()
    return Closing(
        items=count,
        closed=len(delays),
        p50_ms=percentile(delays, 0.5),
        p99_ms=percentile(delays, 0.99),
        max_ms=delays[-1] if delays else 0.0,
    )


async def measure(bidders: int, war_s: float, items: int, progress: Any = print) -> tuple[list[War], Closing]:
    with tempfile.TemporaryDirectory(prefix="auction-last-seconds-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis")
        await redis_server.start()
        bidder_port, edge_port = free_port(), free_port()
        bidder = bidder_process(
            redis_server.url, bidder_port, partitions=PARTITIONS, sink=discard,
            extra_env={"BIDDER_LOG_LEVEL": "warning"},
        )  # fmt: skip
        edge = edge_process(
            f"127.0.0.1:{bidder_port}", edge_port, SECRET, sink=discard,
            extra_env={"EDGE_LOG_LEVEL": "warning", "EDGE_READ_RATE_LIMIT_PER_SECOND": "0"},
        )  # fmt: skip
        redis = Redis.from_url(redis_server.url)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{bidder_port}")
        try:
            await bidder.start()
            await edge.start()
            wars = []
            for soft in (False, True):
                progress(f"  last seconds: {bidders} REST bidders, soft close {'on' if soft else 'off'}")
                wars.append(await _war(f"http://127.0.0.1:{edge_port}", redis, bidders, war_s, soft))
            progress(f"  last seconds: {items} items ending in the same second")
            closing = await _closing(bidder_pb2_grpc.BidderServiceStub(channel), redis, items)
        finally:
            await channel.close(grace=None)
            await redis.aclose()
            await edge.stop()
            await bidder.stop()
            await redis_server.stop()
    return wars, closing


async def run(report: Report, *, scale: str = "full", progress: Any = print) -> None:
    bidders, war_s, items = SCALES[scale]
    wars, closing = await measure(bidders, war_s, items, progress)
    report.results["last_seconds"] = {"wars": [asdict(w) for w in wars], "closing": asdict(closing)}
    report.heading("Experiment 4: the last seconds")
    report.text(
        f"{bidders} REST bidders (one edge, one bidder, one Redis) bid the minimum as fast as the "
        f"platform answers from {war_s:.1f} s before an item's end until it is closed; once with a hard "
        "end, once with soft close (2 s window, 2 s extension, capped 10 s after the first end). "
        '"Final second": accepted bids placed within the last second before the end in force.',
    )
    report.table(
        ["soft close", "accepted bids", "in the final second", "extensions", "end moved s", "final price"],
        [
            ["on" if w.soft_close else "off", w.accepted, w.final_second, w.extensions, w.end_moved_s,
             w.final_price]
            for w in wars
        ],
    )  # fmt: skip
    verdict = "goal met" if closing.closed == closing.items and closing.p99_ms <= 1000 else "GOAL MISSED"
    report.text(
        f"{closing.items} items ending in the same second, closed by the bidder's closer (a 0.2 s tick): "
        "delay from each item's end to its `closed` event.",
    )
    report.table(
        ["items", "closed", "p50 ms", "p99 ms", "max ms", "verdict (p99 <= 1 s)"],
        [[closing.items, closing.closed, closing.p50_ms, closing.p99_ms, closing.max_ms, verdict]],
    )
