"""Maximums never reach the public event stream; their audit records reach the archive once each.

A subscriber of `auction.events.>` (what CONTRACT.md offers outside readers) sees every event of a proxy
war and raises, and no message holds a maximum: each decodes to an `auction.v1.Event` in which no integer
is one of the maximums, and the bytes hold neither their digits nor their varints. The maximums, with
digits no price can have, arrive on `auction.audit.>` (stream `AUCTION_AUDIT`) instead. A relay killed
between publish and removal re-publishes its round; the audit stream drops the repeats and the archive
holds each record once, and the rebuild still restores the leader's maximum.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import audit_pb2, bidder_pb2, events_pb2
from auction_contract.redis_layout import ItemField, item_keys
from devstack.processes import ServiceProcess
from devstack.services_archive import rebuild_command, run_rebuild
from tests.archive_fixtures import PARTITIONS, ArchiveStack, always_ready, archive_stack
from tests.conftest import scaled
from tests.faults import fault_env

__all__ = ["archive_stack"]
# Digits that no price, seq or time in these tests can share. ann leads throughout, so none of her
# maximums may ever show; bob's is beaten, and a beaten maximum is a public bid by the contract's rules.
ANN, BOB, RAISED = 736_455, 827_364, 918_273
MAXIMUMS = {ANN, RAISED - 1, RAISED}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _ints(message: Any) -> set[int]:
    found: set[int] = set()
    for _, value in message.ListFields():
        for one in value if hasattr(value, "append") else [value]:
            found |= _ints(one) if hasattr(one, "ListFields") else ({one} if isinstance(one, int) else set())
    return found


async def _create(stack: ArchiveStack) -> str:
    request = bidder_pb2.CreateItemRequest(
        title="Lamp", description="", currency="EUR", starting_price=100, min_increment=5,
        ends_at=Timestamp(seconds=int(time.time()) + 3600),
    )  # fmt: skip
    return str((await stack.stub.CreateItem(request)).item.id)


async def _bid(
    stack: ArchiveStack, item_id: str, bidder: str, amount: int = 0, top: int | None = None
) -> None:
    request = bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=bidder, amount=amount)
    if top is not None:
        request.max_amount = top
    await stack.stub.PlaceBid(request)


async def _war(stack: ArchiveStack, item_id: str) -> None:
    """ann's maximum, bob's plain bid (ann's proxy answers), ann's two raises, bob's lower maximum and
    carl's plain bid (ann's proxy answers both)."""
    await _bid(stack, item_id, "ann", top=ANN)
    await _bid(stack, item_id, "bob", 1000)
    await _bid(stack, item_id, "ann", top=RAISED - 1)
    await _bid(stack, item_id, "ann", top=RAISED)
    await _bid(stack, item_id, "bob", top=BOB)
    await _bid(stack, item_id, "carl", 900_000)


async def _audits(stack: ArchiveStack, item_ids: list[str]) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(
            "SELECT item_id, seq, kind, bidder, max_amount FROM maximum_audit WHERE item_id = ANY($1::text[])"
            " ORDER BY item_id, seq, kind, max_amount",
            item_ids,
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


async def _wait_audits(stack: ArchiveStack, item_ids: list[str], count: int) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + scaled(30)
    while len(rows := await _audits(stack, item_ids)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} of {count} audit records archived"
        await asyncio.sleep(0.2)
    return rows


async def test_a_subscriber_of_the_public_events_never_sees_a_maximum(archive_stack: ArchiveStack) -> None:
    """Every message on `auction.events.>` during a proxy war with raises is an Event holding no maximum
    (no field, no digits, no varint); the audit subjects carry each maximum, and the two streams are
    apart (`AUCTION` stores `auction.events.>` only)."""
    nc = await nats.connect(archive_stack.nats.url)
    public: list[bytes] = []
    audit: list[bytes] = []

    async def on_public(msg: Any) -> None:
        public.append(msg.data)

    async def on_audit(msg: Any) -> None:
        audit.append(msg.data)

    await nc.subscribe("auction.events.>", cb=on_public)
    await nc.subscribe("auction.audit.>", cb=on_audit)
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    try:
        item_id = await _create(archive_stack)
        await _war(archive_stack, item_id)
        rows = await _wait_audits(archive_stack, [item_id], 6)
        await nc.flush()
        await asyncio.sleep(scaled(0.5))
        events = [events_pb2.Event.FromString(data) for data in public]
        assert len({e.event_id for e in events}) == len(events) >= 7
        assert {e.item_id for e in events} == {item_id}
        for event, data in zip(events, public, strict=True):
            assert event.WhichOneof("kind") is not None
            assert not _ints(event) & MAXIMUMS, event
            for top in MAXIMUMS:
                assert str(top).encode() not in data
                assert _varint(top) not in data
        records = {audit_pb2.MaximumAudit.FromString(data).max_amount for data in audit}
        assert records == MAXIMUMS
        assert {row[4] for row in rows} == records
        js = nc.jetstream()
        assert (await js.stream_info("AUCTION")).config.subjects == ["auction.events.>"]
        assert (await js.stream_info("AUCTION_AUDIT")).config.subjects == ["auction.audit.>"]
    finally:
        await nc.close()
        await archiver.stop()
        await relay.stop()


async def _died_by_sigkill(process: ServiceProcess) -> None:
    process.ready = always_ready()
    await process.start()
    returncode = await asyncio.wait_for(process.wait(), timeout=scaled(20))
    assert returncode == -signal.SIGKILL, process.tail()


@pytest.mark.timeout(180)
async def test_audit_records_are_archived_once_each_when_the_relay_re_publishes(
    archive_stack: ArchiveStack,
) -> None:
    """Proxy bids and raises on three items wait in the outbox; three relays die right after their
    round's publish acks (before removal), so the next one publishes the same events and audit records
    again. JetStream drops the repeats (the audit stream holds each record once), the archive holds each
    once, and a rebuild of a lost item restores the leader's raised maximum."""
    archiver = archive_stack.archiver()
    await archiver.start()
    items = [await _create(archive_stack) for _ in range(3)]
    for item_id in items:
        await _bid(archive_stack, item_id, "ann", top=ANN)
        await _bid(archive_stack, item_id, "bob", 1000)
        await _bid(archive_stack, item_id, "ann", top=RAISED)
    for _ in range(3):
        faulty = archive_stack.relay(
            fault_env(1, "after_publish"), consumer="audit-pinned", module="tests.faulty_relay"
        )
        await _died_by_sigkill(faulty)
    relay = archive_stack.relay(consumer="audit-pinned")
    await relay.start()
    try:
        want = sorted(
            row for item_id in items
            for row in ((item_id, 2, "bid", "ann", ANN), (item_id, 4, "bid", "ann", ANN),
                        (item_id, 4, "raise", "ann", RAISED))
        )  # fmt: skip
        assert await _wait_audits(archive_stack, items, len(want)) == want
        assert relay.endpoint is not None
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            text = (await client.get(f"{relay.endpoint}/metrics")).text
        assert any(
            line.startswith("relay_duplicates_total ") and float(line.split()[-1]) > 0
            for line in text.splitlines()
        )
        nc = await nats.connect(archive_stack.nats.url)
        try:
            info = await nc.jetstream().stream_info("AUCTION_AUDIT", subjects_filter="auction.audit.>")
            assert sum((info.state.subjects or {}).get(f"auction.audit.{i}", 0) for i in items) == len(want)
        finally:
            await nc.close()
        await asyncio.sleep(scaled(1))
        assert await _audits(archive_stack, items) == want

        lost = items[0]
        keys = item_keys(lost, PARTITIONS)
        redis = archive_stack.redis_client()
        try:
            before = await redis.hgetall(keys.item)
            assert before[ItemField.LEADER_MAX.value] == str(RAISED)
            await redis.delete(keys.item, keys.events)
            await redis.zrem(keys.index, lost)
            await redis.zrem(keys.ends, lost)
            result = await run_rebuild(rebuild_command([lost]), archive_stack.rebuild_env(), scaled(60))
            assert result.returncode == 0, result.output
            assert await redis.hgetall(keys.item) == before
        finally:
            await redis.aclose()
    finally:
        await relay.stop()
        await archiver.stop()
