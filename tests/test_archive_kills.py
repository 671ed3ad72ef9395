"""Crashes at the worst moments lose nothing and duplicate nothing.

The relay and the archiver have a fault-injection setting that SIGKILLs the process right inside the
window that matters: after JetStream acknowledged a batch but before the outbox removal (relay), after
the transaction committed but before the acks (archiver). Each is killed there many times in a row while
bids keep flowing; then the archive must equal the accepted bids, and the stream must hold each once.
"""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import httpx
from redis.asyncio import Redis

from auction_contract.redis_layout import outbox_key
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from relay.outbox import Outbox
from tests.archive_fixtures import PARTITIONS, ArchiveStack, always_ready, archive_stack
from tests.conftest import scaled
from tests.faults import fault_env

__all__ = ["archive_stack"]
KILL_ROUNDS = 8
# The services with a SIGKILL armed at a checkpoint (tests/faults.py).
FAULTY_RELAY = "tests.faulty_relay"
FAULTY_ARCHIVER = "tests.faulty_archiver"


async def died_by_sigkill(process: ServiceProcess) -> None:
    """Start a process expected to kill itself, and wait until it did."""
    process.ready = always_ready()
    await process.start()
    returncode = await asyncio.wait_for(process.wait(), timeout=scaled(20))
    assert returncode == -signal.SIGKILL, process.tail()


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        text = (await client.get(url)).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def stream_matches_archive(stack: ArchiveStack) -> None:
    """Every message in the stream is one archived row: no event was stored twice by JetStream."""
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetchval("SELECT (SELECT count(*) FROM items) + (SELECT count(*) FROM bids)")
    finally:
        await conn.close()
    assert await stack.stream_messages() == rows


async def test_relay_killed_between_publish_and_removal_loses_and_duplicates_nothing(
    archive_stack: ArchiveStack,
) -> None:
    """The relay dies after the publish acks, before XDEL/XACK, 8 times; re-publishes are dropped."""
    archiver = archive_stack.archiver()
    await archiver.start()
    items = await archive_stack.create_items(4)
    load = archive_stack.load(items, rate=40)
    await load.start()
    for round_ in range(KILL_ROUNDS):
        crash_after = fault_env(1 + round_ % 3, "after_publish")
        await died_by_sigkill(archive_stack.relay(crash_after, consumer="relay-pinned", module=FAULTY_RELAY))
    await load.stop()
    relay = archive_stack.relay(consumer="relay-pinned")
    await relay.start()
    assert not load.errors
    await archive_stack.wait_archived(load.accepted, items, within=30)
    await stream_matches_archive(archive_stack)
    # The last victim's published-but-not-removed entries were re-published, and JetStream dropped them.
    assert relay.endpoint is not None
    assert await metric(f"{relay.endpoint}/metrics", "relay_duplicates_total") > 0
    await relay.stop()
    await archiver.stop()


async def test_a_dead_relays_pending_entries_are_claimed_by_another(archive_stack: ArchiveStack) -> None:
    """Relay A dies holding entries it never published; relay B claims them, so none is lost."""
    archiver = archive_stack.archiver()
    await archiver.start()
    items = await archive_stack.create_items(4)
    load = archive_stack.load(items, rate=40)
    await load.start()
    doomed = fault_env(1, "before_publish")
    await died_by_sigkill(archive_stack.relay(doomed, consumer="relay-a", module=FAULTY_RELAY))
    survivor = archive_stack.relay(consumer="relay-b")
    await survivor.start()
    await asyncio.sleep(scaled(1))
    await load.stop()
    assert not load.errors
    await archive_stack.wait_archived(load.accepted, items, within=30)
    assert survivor.endpoint is not None
    assert await metric(f"{survivor.endpoint}/metrics", "relay_entries_claimed_total") > 0
    redis = Redis.from_url(archive_stack.redis.url, decode_responses=True)
    try:
        for p in range(PARTITIONS):
            for consumer in await redis.xinfo_consumers(outbox_key(p), "relay"):
                assert consumer["pending"] == 0, consumer
        # The dead consumer, with nothing pending any more, is forgotten; the live one stays.
        await Outbox(redis, PARTITIONS, "relay", "relay-b", 10).forget_stale_consumers(0)
        names = {
            c["name"] for p in range(PARTITIONS) for c in await redis.xinfo_consumers(outbox_key(p), "relay")
        }
        assert "relay-a" not in names
        assert "relay-b" in names
    finally:
        await redis.aclose()
    await stream_matches_archive(archive_stack)
    await survivor.stop()
    await archiver.stop()


async def test_archiver_killed_between_commit_and_ack_stores_each_event_once(
    archive_stack: ArchiveStack,
) -> None:
    """The archiver dies after commit, before the acks, 8 times; redeliveries are skipped, none is lost."""
    relay = archive_stack.relay()
    await relay.start()
    items = await archive_stack.create_items(4)
    load = archive_stack.load(items, rate=40)
    await load.start()
    for round_ in range(KILL_ROUNDS):
        crash_after = fault_env(1 + round_ % 3, "after_commit")
        await died_by_sigkill(archive_stack.archiver(crash_after, module=FAULTY_ARCHIVER))
    await load.stop()
    metrics_port = free_port()
    archiver = archive_stack.archiver({"ARCHIVER_METRICS_PORT": str(metrics_port)})
    await archiver.start()
    assert not load.errors
    await archive_stack.wait_archived(load.accepted, items, within=30)
    await stream_matches_archive(archive_stack)
    # The last victim's committed batch came back to this archiver, which skipped it.
    assert await metric(f"http://127.0.0.1:{metrics_port}/metrics", "archiver_duplicates_total") > 0
    await archiver.stop()
    await relay.stop()


async def test_sigterm_lets_relay_and_archiver_finish_their_batch_and_exit_cleanly(
    archive_stack: ArchiveStack,
) -> None:
    """SIGTERM in the middle of a war: both exit 0, and their successors archive the rest exactly."""
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    items = await archive_stack.create_items(4)
    load = archive_stack.load(items, rate=40)
    await load.start()
    await asyncio.sleep(scaled(1.5))
    assert await archiver.stop() == 0
    assert await relay.stop() == 0
    relay, archiver = archive_stack.relay(), archive_stack.archiver()
    await relay.start()
    await archiver.start()
    await load.stop()
    assert not load.errors
    await archive_stack.wait_archived(load.accepted, items, within=30)
    await stream_matches_archive(archive_stack)
