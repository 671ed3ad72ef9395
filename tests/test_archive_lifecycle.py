"""Auctions that end, on the archival path end to end: bidder (with its closer), relay, archiver, rebuild.

Soft close extensions and the close travel from the bidder's outbox through JetStream into PostgreSQL:
each event once (also when the archiver gets every message twice), the item's effective end, rule and
hidden reserve on its row, one result row per closed item, bid history still bids only. The rebuild then
brings back a closed item and an extended open one exactly as the bidder left them, ends set included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
import nats
import orjson
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2, history_pb2, history_pb2_grpc
from auction_contract.redis_layout import item_keys
from auction_contract.wire_time import parse_ms
from devstack.processes import ServiceProcess
from devstack.services_archive import rebuild_command, run_rebuild
from tests.archive_fixtures import PARTITIONS, ArchiveStack, archive_stack
from tests.conftest import scaled

__all__ = ["archive_stack"]


@pytest.fixture(scope="module")
async def running(archive_stack: ArchiveStack) -> tuple[ServiceProcess, ServiceProcess]:
    """One relay and one archiver for the module (the stack stops them at the end)."""
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    return relay, archiver


@pytest.fixture
async def history(
    running: tuple[ServiceProcess, ServiceProcess],
) -> AsyncIterator[history_pb2_grpc.HistoryServiceAsyncStub]:
    endpoint = running[1].endpoint
    assert endpoint is not None
    async with grpc.aio.insecure_channel(endpoint.removeprefix("grpc://")) as channel:
        yield history_pb2_grpc.HistoryServiceStub(channel)


def _ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _create(
    stack: ArchiveStack, ends_in_ms: int, window_s: int, extension_s: int, reserve: int | None
) -> tuple[str, int]:
    """A soft-close item capped an hour after its end; its id and its end as created."""
    ends_ms = _now_ms() + ends_in_ms
    request = bidder_pb2.CreateItemRequest(
        title="Lamp", description="brass", currency="EUR", starting_price=100, min_increment=5,
        ends_at=_ts(ends_ms),
    )  # fmt: skip
    request.soft_close.window_seconds = window_s
    request.soft_close.extension_seconds = extension_s
    request.soft_close.max_ends_at.CopyFrom(_ts(ends_ms + 3_600_000))
    if reserve is not None:
        request.reserve_price = reserve
    return (await stack.stub.CreateItem(request)).item.id, ends_ms


async def _bid(stack: ArchiveStack, item_id: str, bidder: str, amount: int) -> bidder_pb2.PlaceBidResponse:
    return await stack.stub.PlaceBid(
        bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
    )


async def _live(stack: ArchiveStack, item_id: str) -> tuple[Any, Any, Any, Any]:
    """The item's hash, history entries, index score and ends set score in Redis."""
    keys = item_keys(item_id, PARTITIONS)
    redis = stack.redis_client()
    try:
        return (
            await redis.hgetall(keys.item),
            await redis.xrange(keys.events),
            await redis.zscore(keys.index, item_id),
            await redis.zscore(keys.ends, item_id),
        )
    finally:
        await redis.aclose()


async def _lose(stack: ArchiveStack, item_id: str) -> None:
    """Redis loses the item: hash, history, index and ends entries."""
    keys = item_keys(item_id, PARTITIONS)
    redis = stack.redis_client()
    try:
        await redis.delete(keys.item, keys.events)
        await redis.zrem(keys.index, item_id)
        await redis.zrem(keys.ends, item_id)
    finally:
        await redis.aclose()


def _events(live: tuple[Any, Any, Any, Any]) -> list[dict[str, Any]]:
    return [orjson.loads(fields["e"]) for _, fields in live[1]]


async def _wait_until(stack: ArchiveStack, query: str, *args: Any, within: float = 30) -> Any:
    """Poll PostgreSQL until `query` gives a true value; that value."""
    deadline = time.monotonic() + scaled(within)
    while True:
        conn = await asyncpg.connect(stack.dsn)
        try:
            value = await conn.fetchval(query, *args)
        finally:
            await conn.close()
        if value:
            return value
        assert time.monotonic() < deadline, f"not archived in time: {query} {args}"
        await asyncio.sleep(0.2)


async def _archive_rows(stack: ArchiveStack, item_ids: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        ids = [item_ids]
        return {
            "items": await conn.fetch("SELECT * FROM items WHERE item_id = ANY($1) ORDER BY item_id", *ids),
            "bids": await conn.fetch(
                "SELECT item_id, seq FROM bids WHERE item_id = ANY($1) ORDER BY item_id, seq", *ids
            ),
            "extensions": await conn.fetch(
                "SELECT item_id, seq, event_id, ends_at, previous_ends_at FROM extensions"
                " WHERE item_id = ANY($1) ORDER BY item_id, seq",
                *ids,
            ),
            "results": await conn.fetch(
                "SELECT * FROM auction_results WHERE item_id = ANY($1) ORDER BY item_id", *ids
            ),
            "others": await conn.fetchval("SELECT count(*) FROM other_events WHERE item_id = ANY($1)", *ids),
            "dead": await conn.fetchval("SELECT count(*) FROM dead_letters"),
        }
    finally:
        await conn.close()


async def _redeliver_twice(stack: ArchiveStack, item_ids: list[str]) -> int:
    """Publish every stored message of these items once more under a new message id, so the archiver
    gets each of their events a second time; wait until it has consumed them. How many were sent."""
    nc = await nats.connect(stack.nats.url)
    try:
        js = nc.jetstream()
        copies: list[tuple[str, bytes]] = []
        for item_id in item_ids:
            sub = await js.subscribe(f"auction.events.{item_id}", ordered_consumer=True)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=1)
                    except nats.errors.TimeoutError:
                        break
                    copies.append((msg.subject, msg.data))
            finally:
                await sub.unsubscribe()
        for n, (subject, data) in enumerate(copies):
            await js.publish(subject, data, headers={"Nats-Msg-Id": f"redelivery-{n}-{subject}"})
        deadline = time.monotonic() + scaled(30)
        while True:
            info = await js.consumer_info("AUCTION", "archiver")
            if not info.num_pending and not info.num_ack_pending:
                return len(copies)
            assert time.monotonic() < deadline, "the archiver did not consume the copies"
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


async def test_extensions_and_the_close_are_archived_once_with_one_result_row_and_rebuilt(
    archive_stack: ArchiveStack,
    running: tuple[ServiceProcess, ServiceProcess],
    history: history_pb2_grpc.HistoryServiceAsyncStub,
) -> None:
    """Two late bids extend a lot twice, then the closer sells it; another lot ends unsold (reserve not
    met). The archive holds each extended and closed event once even when every message arrives twice,
    the effective end, rule, created end and hidden reserve on the item row, one result row per item
    equal to the `closed` event, and bid history lists bids only. Redis then loses both items: the
    rebuild brings back hash, history, index entry and seq exactly, and neither is in the ends set."""
    # Every bid falls in the window and moves the end to 3 s after it (past the end in force).
    sold, sold_created_end = await _create(archive_stack, 2000, window_s=10, extension_s=3, reserve=100)
    unsold, _ = await _create(archive_stack, 1500, window_s=10, extension_s=3, reserve=10_000)
    await _bid(archive_stack, sold, "ann", 100)
    await asyncio.sleep(0.05)
    await _bid(archive_stack, sold, "bob", 105)
    await _bid(archive_stack, unsold, "ann", 100)
    for item_id in (sold, unsold):
        await _wait_until(
            archive_stack, "SELECT 1 FROM auction_results WHERE item_id = $1", item_id, within=30
        )
    live = {item_id: await _live(archive_stack, item_id) for item_id in (sold, unsold)}
    sold_events, unsold_events = _events(live[sold]), _events(live[unsold])
    assert [(e["type"], e["seq"]) for e in sold_events] == [
        ("created", 1), ("bid", 2), ("extended", 3), ("bid", 4), ("extended", 5), ("closed", 6),
    ]  # fmt: skip
    assert [e["type"] for e in unsold_events] == ["created", "bid", "extended", "closed"]

    for attempt in ("first", "redelivered"):
        if attempt == "redelivered":
            assert await _redeliver_twice(archive_stack, [sold, unsold]) == 10
        rows = await _archive_rows(archive_stack, [sold, unsold])
        assert (rows["others"], rows["dead"]) == (0, 0), attempt
        assert [(r["item_id"], r["seq"]) for r in rows["bids"]] == sorted(
            [(sold, 2), (sold, 4), (unsold, 2)]
        ), attempt
        extensions = [
            (r["item_id"], r["seq"], r["event_id"], _ms(r["ends_at"]), _ms(r["previous_ends_at"]))
            for r in rows["extensions"]
        ]
        assert extensions == sorted(
            (
                item_id,
                e["seq"],
                f"{item_id}.{e['seq']}",
                parse_ms(e["ends_at"]),
                parse_ms(e["previous_ends_at"]),
            )
            for item_id, events in ((sold, sold_events), (unsold, unsold_events))
            for e in events
            if e["type"] == "extended"
        ), attempt
        results = {r["item_id"]: r for r in rows["results"]}
        assert len(results) == 2, attempt
        for item_id, events in ((sold, sold_events), (unsold, unsold_events)):
            closed, result = events[-1], results[item_id]
            assert (result["seq"], result["event_id"], result["outcome"], result["winner"]) == (
                closed["seq"], f"{item_id}.{closed['seq']}", closed["outcome"], closed["winner"]
            )  # fmt: skip
            assert (result["final_price"], result["bid_count"]) == (
                closed["final_price"],
                closed["bid_count"],
            )
            assert _ms(result["closed_at"]) == parse_ms(closed["closed_at"]) == int(live[item_id][0]["cat"])
        assert (results[sold]["outcome"], results[sold]["winner"], results[sold]["final_price"]) == (
            "sold", "bob", 105
        )  # fmt: skip
        assert (results[unsold]["outcome"], results[unsold]["winner"]) == ("no_sale", None)
        items = {r["item_id"]: r for r in rows["items"]}
        row = items[sold]
        assert _ms(row["ends_at"]) == int(live[sold][0]["et"]) == parse_ms(sold_events[4]["ends_at"])
        assert _ms(row["created_ends_at"]) == sold_created_end
        assert (row["soft_window_seconds"], row["soft_extension_seconds"]) == (10, 3)
        assert _ms(row["soft_max_ends_at"]) == sold_created_end + 3_600_000
        assert (row["reserve_price"], items[unsold]["reserve_price"]) == (100, 10_000)

    page = await history.ListBids(history_pb2.ListBidsRequest(item_id=sold))
    assert [b.seq for b in page.bids] == [4, 2]

    for item_id, seq in ((sold, 6), (unsold, 4)):
        before = live[item_id]
        assert before[3] is None  # closed: in no ends set
        await _lose(archive_stack, item_id)
        result = await run_rebuild(rebuild_command([item_id]), archive_stack.rebuild_env(), scaled(60))
        assert result.returncode == 0, result.output
        assert f"rebuilt {item_id} seq={seq}" in result.output
        assert await _live(archive_stack, item_id) == before
    refused = await _code(_bid(archive_stack, sold, "carl", 1000))
    assert refused == grpc.StatusCode.FAILED_PRECONDITION  # still closed


async def test_rebuild_of_an_extended_open_item_restores_its_effective_end_and_ends_entry(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """An open item extended by a late bid, lost by Redis: the rebuild restores the moved end (hash and
    ends set score, so the closer will close it then), the rule and reserve, and seq = the extension's;
    the next late bid extends it again at the next seqs, and that extension reaches the archive too."""
    item_id, created_end = await _create(archive_stack, 60_000, window_s=300, extension_s=120, reserve=500)
    await _bid(archive_stack, item_id, "ann", 100)
    await _wait_until(archive_stack, "SELECT 1 FROM extensions WHERE item_id = $1 AND seq = 3", item_id)
    before = await _live(archive_stack, item_id)
    assert before[3] == float(before[0]["et"]) > created_end
    await _wait_until(
        archive_stack, "SELECT 1 FROM items WHERE item_id = $1 AND ends_at > created_ends_at", item_id
    )
    await _lose(archive_stack, item_id)

    result = await run_rebuild(rebuild_command([item_id]), archive_stack.rebuild_env(), scaled(60))
    assert result.returncode == 0, result.output
    assert f"rebuilt {item_id} seq=3" in result.output
    assert await _live(archive_stack, item_id) == before

    late = await _bid(archive_stack, item_id, "bob", 600)
    assert late.seq == 4
    after = await _live(archive_stack, item_id)
    assert [(e["type"], e["seq"]) for e in _events(after)][-2:] == [("bid", 4), ("extended", 5)]
    assert after[3] == float(after[0]["et"]) > before[3]
    moved = await _wait_until(
        archive_stack, "SELECT ends_at FROM items WHERE item_id = $1 AND ends_at > $2", item_id,
        datetime.fromtimestamp(int(before[0]["et"]) / 1000, UTC),
    )  # fmt: skip
    assert _ms(moved) == int(after[0]["et"])
