"""`python -m auction_bench.grpc_war`: the same bidding war as `rest_war`, over gRPC straight to the bidder.

Internal callers (another service, a trading desk's gateway) may call the bidder without the REST edge.
N bidders share one HTTP/2 channel from one load process (as one such caller would), each bidding like
a person: top the `min_next_bid` of every answer, a rejection's included (its ErrorInfo carries it).
Two ways to call:

- `unary`: one `PlaceBid` call per bid. Each call costs the bidder a gRPC request of its own, which in
  grpcio's Python server is far more CPU than the bid itself.
- `batched`: concurrent bids go out together as one `PlaceBids` call (the edge's own `BidBatcher`, no
  timer: a lone bid goes at once), each bid still getting its own outcome.

The bidder group-commits either way (one Lua call per item and batch). Each run gets the same computed
verdict as the REST war (unique gap-free seqs, rising amounts, the final item).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import cast

import grpc
import uvloop
from google.rpc import error_details_pb2, status_pb2

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.grpc_items import create_items
from auction_bench.http_load import WorkerResult
from auction_bench.rest_war import RunFigures, summarize
from auction_bench.verdict import war_verdict
from devstack.ports import LOCALHOST, free_port
from devstack.processes import ServiceProcess
from devstack.servers import RedisServer
from devstack.services import bidder_process
from edge_gateway.bid_batcher import BidBatcher

INCREMENT = 10
_DETAILS_KEY = "grpc-status-details-bin"
# HTTP-like status codes in the figures, so the REST and gRPC wars share one summary.
_ACCEPTED, _REJECTED = 201, 409


def _min_next_bid(err: grpc.aio.AioRpcError) -> int | None:
    """The `min_next_bid` a BID_TOO_LOW rejection carries in its rich status trailer."""
    trailer = cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ())
    for key, value in trailer:
        if key == _DETAILS_KEY and isinstance(value, bytes):
            return _hint_in(status_pb2.Status.FromString(value))
    return None


def _hint_in(rich: status_pb2.Status) -> int | None:
    for detail in rich.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and "min_next_bid" in info.metadata:
            return int(info.metadata["min_next_bid"])
    return None


Place = Callable[[bidder_pb2.PlaceBidRequest], Awaitable[bidder_pb2.BidOutcome]]


def unary_place(stub: bidder_pb2_grpc.BidderServiceAsyncStub) -> Place:
    """One PlaceBid call per bid, its answer or rejection shaped as a PlaceBids outcome."""

    async def place(request: bidder_pb2.PlaceBidRequest) -> bidder_pb2.BidOutcome:
        try:
            return bidder_pb2.BidOutcome(accepted=await stub.PlaceBid(request, timeout=10))
        except grpc.aio.AioRpcError as err:
            hint = _min_next_bid(err) if err.code() is grpc.StatusCode.FAILED_PRECONDITION else None
            if hint is None:
                raise
            rich = status_pb2.Status(code=err.code().value[0])
            rich.details.add().Pack(error_details_pb2.ErrorInfo(metadata={"min_next_bid": str(hint)}))
            return bidder_pb2.BidOutcome(rejected=rich)

    return place


def batched_place(stub: bidder_pb2_grpc.BidderServiceAsyncStub) -> Place:
    batcher = BidBatcher(stub, timeout=10)

    async def place(request: bidder_pb2.PlaceBidRequest) -> bidder_pb2.BidOutcome:
        return await batcher.submit(request)

    return place


async def _bidder_loop(
    place: Place,
    item_id: str,
    bidder: str,
    deadline: float,
    measure_from: float,
    result: WorkerResult,
) -> None:
    next_amount = 100
    while (now := time.perf_counter()) < deadline:
        amount = next_amount + random.randrange(0, 3) * INCREMENT
        request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
        try:
            outcome = await place(request)
        except grpc.aio.AioRpcError:
            outcome = None
        hint = _hint_in(outcome.rejected) if outcome is not None and outcome.HasField("rejected") else None
        if outcome is not None and outcome.HasField("accepted"):
            reply = outcome.accepted
            status = _ACCEPTED
            result.accepted.append((reply.seq, reply.amount))
            result.accepted_at.append(time.monotonic())
            next_amount = reply.item.min_next_bid
        elif hint is not None:
            status, next_amount = _REJECTED, hint
        else:
            result.errors += 1
            status = 0
        if now >= measure_from:
            result.latencies_ms.append((time.perf_counter() - now) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1


def _worker(args: tuple[str, str, str, int, float, float]) -> WorkerResult:
    mode, target, item_id, bidders, deadline_in, measure_in = args

    async def run() -> WorkerResult:
        result = WorkerResult()
        async with grpc.aio.insecure_channel(target) as channel:
            stub = bidder_pb2_grpc.BidderServiceStub(channel)
            place = batched_place(stub) if mode == "batched" else unary_place(stub)
            now = time.perf_counter()
            await asyncio.gather(
                *(
                    _bidder_loop(place, item_id, f"b{i}", now + deadline_in, now + measure_in, result)
                    for i in range(bidders)
                )
            )
        return result

    return uvloop.run(run())


async def _final_item(stub: bidder_pb2_grpc.BidderServiceAsyncStub, item_id: str) -> dict[str, object]:
    item = (await stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))).item
    price = item.current_price if item.HasField("current_price") else None
    return {"current_price": price, "bid_count": item.bid_count, "seq": item.seq}


async def bench(modes: list[str], levels: list[int], duration: float, warmup: float) -> list[RunFigures]:
    """One run per mode and concurrency level, each on a fresh item, against a Lua bidder on its own Redis."""
    figures: list[RunFigures] = []
    with tempfile.TemporaryDirectory(prefix="auction-grpc-war-") as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        await redis.start()
        port = free_port()
        bidder: ServiceProcess = bidder_process(
            redis.url, port, log_path=Path(tmp) / "bidder.log", extra_env={"BIDDER_LOG_LEVEL": "warning"}
        )
        target = f"{LOCALHOST}:{port}"
        try:
            await bidder.start()
            async with grpc.aio.insecure_channel(target) as channel:
                stub = bidder_pb2_grpc.BidderServiceStub(channel)
                context = multiprocessing.get_context("spawn")
                for mode, level in ((m, n) for m in modes for n in levels):
                    (item_id,) = await create_items(stub, 1, min_increment=INCREMENT)
                    job = (mode, target, item_id, level, warmup + duration, warmup)
                    with context.Pool(1) as pool:  # a process of its own, as in the REST war
                        result = await asyncio.to_thread(pool.apply, _worker, (job,))
                    run = summarize(f"grpc-{mode}", level, duration, [result])
                    final = await _final_item(stub, item_id)
                    run.verdict = str(war_verdict(result.accepted, final, INCREMENT))
                    figures.append(run)
        finally:
            await bidder.stop()
            await redis.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="unary,batched", help="comma list: unary, batched")
    parser.add_argument("--levels", default="10,50,200", help="comma list of concurrent bidders")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    ns = parser.parse_args(argv)
    levels = [int(x) for x in ns.levels.split(",")]
    figures = asyncio.run(bench(ns.modes.split(","), levels, ns.duration, ns.warmup))
    print(
        f"{'mode':>14}{'bidders':>8}{'bids/s':>10}{'accepted/s':>12}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'errors %':>9}  verdict"
    )
    for f in figures:
        print(
            f"{f.target:>14}{f.concurrency:>8}{f.rps:>10,.0f}{f.accepted_per_s:>12,.0f}{f.p50_ms:>8.1f}{f.p99_ms:>8.1f}"
            f"{f.error_rate * 100:>9.2f}  {f.verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
