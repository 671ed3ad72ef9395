"""`python -m auction_bench.archive_load`: a steady, paced bid load in its own process, with a full record.

Used by the archive benchmark and the archive tests. It runs in a process of its own so that the caller
(a test process that also starts and kills services) is never forking while gRPC calls are in flight,
and so the latency it measures is not disturbed by the caller's work. One worker per item and contender
places a bid every 1/rate seconds at the item's next minimum; a lost race (too low) reads the new
minimum and goes on. On SIGTERM or SIGINT it stops and writes, as JSON to `--out`:

    {"accepted": [[item_id, seq, bid_id, bidder, amount], ...],
     "samples": [[sent_at_unix_seconds, latency_ms, accepted], ...],
     "errors": ["...", ...], "rejected": n}

Targets: `--grpc host:port` (the bidder's PlaceBid) or `--rest http://host:port` (the edge's
POST /items/{id}/bid, tokens minted with the secret in AUCTION_JWT_SECRET).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
import orjson
import uvloop

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.http_load import Connection
from devstack.tokens import SECRET_ENV, mint_token

READY_LINE = "load running"


@dataclass
class Record:
    accepted: list[tuple[str, int, str, str, int]] = field(default_factory=list)
    samples: list[tuple[float, float, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """accepted: (seq, bid_id); otherwise the new minimum when the bid was too low, or an error."""

    accepted: tuple[int, str] | None
    min_next_bid: int | None
    error: str | None = None


class Target(Protocol):
    async def bid(self, item_id: str, bidder: str, amount: int) -> Outcome: ...

    async def close(self) -> None: ...


class GrpcTarget:
    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = bidder_pb2_grpc.BidderServiceStub(self._channel)

    async def bid(self, item_id: str, bidder: str, amount: int) -> Outcome:
        request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
        try:
            reply = await self._stub.PlaceBid(request, timeout=30)
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.FAILED_PRECONDITION:
                current = await self._stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id), timeout=30)
                return Outcome(None, current.item.min_next_bid)
            return Outcome(None, None, f"{err.code().name}: {err.details()}")
        return Outcome((reply.seq, reply.bid_id), reply.item.min_next_bid)

    async def close(self) -> None:
        await self._channel.close(grace=None)


class RestTarget:
    """One keep-alive connection per worker (`http_load.Connection`), like a browser tab per bidder."""

    def __init__(self, base_url: str, secret: str) -> None:
        host_port = base_url.removeprefix("http://").rstrip("/")
        self._host, port = host_port.rsplit(":", 1)
        self._port = int(port)
        self._secret = secret
        self._tokens: dict[str, str] = {}
        self._connections: dict[tuple[str, str], Connection] = {}

    async def bid(self, item_id: str, bidder: str, amount: int) -> Outcome:
        token = self._tokens.get(bidder) or self._tokens.setdefault(
            bidder, mint_token(self._secret, bidder, "bidder", ttl_seconds=7200)
        )
        key = (item_id, bidder)
        conn = self._connections.get(key) or await self._open(key)
        body = b'{"amount":%d}' % amount
        raw = (
            f"POST /items/{item_id}/bid HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            status, answer = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await conn.close()
            del self._connections[key]
            return Outcome(None, None, repr(exc))
        doc = orjson.loads(answer) if answer[:1] == b"{" else {}
        if status == 201:
            return Outcome((int(doc["seq"]), str(doc["bid_id"])), int(doc["item"]["min_next_bid"]))
        if status == 409 and "min_next_bid" in doc:
            return Outcome(None, int(doc["min_next_bid"]))
        return Outcome(None, None, f"HTTP {status}: {answer[:200]!r}")

    async def _open(self, key: tuple[str, str]) -> Connection:
        conn = self._connections[key] = await Connection.open(self._host, self._port)
        return conn

    async def close(self) -> None:
        for conn in self._connections.values():
            await conn.close()


async def worker(
    target: Target, item_id: str, bidder: str, rate: float, amount: int, stop: asyncio.Event, record: Record
) -> None:
    period = 1.0 / rate
    while not stop.is_set():
        started, sent_at = time.perf_counter(), time.time()
        outcome = await target.bid(item_id, bidder, amount)
        latency = (time.perf_counter() - started) * 1000
        if outcome.error is not None:
            record.errors.append(outcome.error)
        else:
            record.samples.append((sent_at, latency, outcome.accepted is not None))
            if outcome.accepted is not None:
                seq, bid_id = outcome.accepted
                record.accepted.append((item_id, seq, bid_id, bidder, amount))
            else:
                record.rejected += 1
        if outcome.min_next_bid is not None:
            amount = outcome.min_next_bid
        pause = period - (time.perf_counter() - started)
        if pause > 0:
            try:
                async with asyncio.timeout(pause):
                    await stop.wait()
            except TimeoutError:
                pass


async def run(ns: argparse.Namespace) -> Record:
    target: Target = GrpcTarget(ns.grpc) if ns.grpc else RestTarget(ns.rest, os.environ[SECRET_ENV])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ns.duration:
        loop.call_later(ns.duration, stop.set)
    record = Record()
    tasks = [
        asyncio.create_task(worker(target, item_id, f"bidder-{n}", ns.rate, ns.start_amount, stop, record))
        for item_id in ns.items.split(",")
        for n in range(ns.contenders)
    ]
    print(READY_LINE, flush=True)
    await asyncio.gather(*tasks)
    await target.close()
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--grpc", help="the bidder, host:port")
    where.add_argument("--rest", help="the edge, http://host:port")
    parser.add_argument("--items", required=True, help="comma list of item ids")
    parser.add_argument("--rate", type=float, default=20.0, help="bids/s per worker")
    parser.add_argument("--contenders", type=int, default=1, help="workers per item")
    parser.add_argument("--start-amount", type=int, default=100, help="the first bid (the items' start)")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: signal)"
    )
    parser.add_argument("--out", type=Path, required=True, help="where the JSON record goes")
    ns = parser.parse_args(argv)
    record = uvloop.run(run(ns))
    ns.out.write_text(
        json.dumps(
            {
                "accepted": record.accepted,
                "samples": record.samples,
                "errors": record.errors,
                "rejected": record.rejected,
            }
        )
    )


if __name__ == "__main__":
    main()
