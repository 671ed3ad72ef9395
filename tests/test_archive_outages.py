"""NATS or PostgreSQL away (stopped, or frozen with SIGSTOP) during a bidding war.

The bid path never touches either, so every bid is still accepted at the same latency; the outbox (NATS
away) or JetStream (PostgreSQL away) holds the backlog, and once the server is back the archive converges
to exactly the accepted bids. Outages are a few seconds here; the benchmark runs the long ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auction.v1 import history_pb2, history_pb2_grpc
from devstack.processes import ServiceProcess
from tests.archive_fixtures import ArchiveStack, archive_stack, percentile
from tests.conftest import scaled

__all__ = ["archive_stack"]
OUTAGE_SECONDS = 6.0
RATE_PER_ITEM = 50.0
ITEMS = 4
OUTBOX_BOUND = 100


@pytest.fixture(scope="module")
async def running(archive_stack: ArchiveStack) -> tuple[ServiceProcess, ServiceProcess]:
    relay = archive_stack.relay({"RELAY_OUTBOX_ALERT_ENTRIES": str(OUTBOX_BOUND)})
    archiver = archive_stack.archiver()
    await relay.start()
    await archiver.start()
    return relay, archiver


async def readyz(relay: ServiceProcess) -> tuple[int, str]:
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        response = await client.get(f"{relay.endpoint}/readyz")
    return response.status_code, response.text


async def serving(archiver: ServiceProcess) -> int:
    assert archiver.endpoint is not None
    async with grpc.aio.insecure_channel(archiver.endpoint.removeprefix("grpc://")) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return int(reply.status)


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + scaled(within)
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def war_through_outage(
    stack: ArchiveStack,
    down: Callable[[], Awaitable[None]],
    up: Callable[[], Awaitable[None]],
    while_down: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Bids flow before, during and after the outage; all accepted, latency steady, archive converges."""
    items = await stack.create_items(ITEMS)
    load = stack.load(items, rate=RATE_PER_ITEM)
    await load.start()
    t0 = time.time()
    await asyncio.sleep(scaled(2))
    t1 = time.time()
    await down()
    await asyncio.sleep(scaled(OUTAGE_SECONDS))
    if while_down is not None:
        await while_down()
    await up()
    t2 = time.time()
    await asyncio.sleep(scaled(2))
    await load.stop()
    assert not load.errors
    assert load.rejected == 0  # one bidder per item, always at the minimum: every bid is accepted
    before, during = load.latencies(t0 + 0.5, t1), load.latencies(t1, t2)
    assert len(during) > RATE_PER_ITEM * ITEMS * OUTAGE_SECONDS * 0.5, "bids slowed down during the outage"
    p99_before, p99_during = percentile(before, 0.99), percentile(during, 0.99)
    # The bid path never waits on NATS or PostgreSQL: any coupling would show as seconds, not ms.
    assert p99_during <= max(2.5 * p99_before, p99_before + 25), (p99_before, p99_during)
    await stack.wait_archived(load.accepted, items, within=40)


async def test_nats_stopped_bids_unaffected_outbox_alerts_archive_converges(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """NATS stopped for 6 s: bids go on; the relay's /readyz names NATS and the outbox bound, then heals."""
    relay, _ = running
    nats = archive_stack.nats

    async def while_down() -> None:
        status, body = await readyz(relay)
        assert status == 503
        assert "NATS is not connected" in body
        assert "above the bound" in body

    await war_through_outage(archive_stack, nats.stop, nats.restart, while_down)

    async def ready() -> bool:
        return (await readyz(relay))[0] == 200

    assert await eventually(ready, within=20)


async def test_nats_frozen_bids_unaffected_archive_converges(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """NATS frozen (SIGSTOP) for 6 s: publishes time out and are retried; nothing lost, nothing doubled."""
    server = archive_stack.nats

    async def freeze() -> None:
        server.pause()  # the whole process tree

    async def thaw() -> None:
        server.resume()

    await war_through_outage(archive_stack, freeze, thaw)


async def test_postgres_stopped_bids_unaffected_history_unavailable_archive_converges(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """PostgreSQL stopped for 6 s: the archiver is NOT_SERVING, history UNAVAILABLE; then it catches up."""
    _, archiver = running
    postgres = archive_stack.postgres

    async def while_down() -> None:
        assert await serving(archiver) == int(health_pb2.HealthCheckResponse.NOT_SERVING)
        assert archiver.endpoint is not None
        async with grpc.aio.insecure_channel(archiver.endpoint.removeprefix("grpc://")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await history_pb2_grpc.HistoryServiceStub(channel).ListBids(
                    history_pb2.ListBidsRequest(item_id="any"), timeout=scaled(10)
                )
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE

    await war_through_outage(archive_stack, postgres.stop, postgres.restart, while_down)

    async def healthy() -> bool:
        return await serving(archiver) == int(health_pb2.HealthCheckResponse.SERVING)

    assert await eventually(healthy, within=20)


async def test_postgres_frozen_bids_unaffected_archive_converges(
    archive_stack: ArchiveStack, running: tuple[ServiceProcess, ServiceProcess]
) -> None:
    """PostgreSQL frozen (SIGSTOP) for 6 s: writes hit their deadline, connections are dropped and retried."""
    server = archive_stack.postgres

    async def freeze() -> None:
        server.pause()  # the whole process tree, backends included

    async def thaw() -> None:
        server.resume()

    await war_through_outage(archive_stack, freeze, thaw)
