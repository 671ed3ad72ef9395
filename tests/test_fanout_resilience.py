"""Fan-out processes dying, restarting, sharing a port, and viewers too slow to keep up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import grpc
import pytest
from websockets.asyncio.client import connect

from auction.live import BidPlaced, ItemStream, LiveEvent, LiveItemNotFound, Reset, Snapshot, watch_item
from auction.v1 import bidder_pb2_grpc
from devstack.ports import free_port
from devstack.servers import RedisServer
from devstack.services import bidder_process
from tests.conftest import scaled
from tests.fanout_fixtures import FanoutStack, RawViewer, eventually, fanout_stack

__all__ = ["fanout_stack"]


async def collect(stream: ItemStream, into: list[LiveEvent]) -> None:
    async for event in stream:
        into.append(event)


async def test_sdk_viewers_survive_a_killed_fanout_process(fanout_stack: FanoutStack) -> None:
    """SIGKILL the fan-out mid-stream and start a new one: SDK viewers resume with since and miss nothing."""
    stack = fanout_stack
    port = free_port()
    first = await stack.start_fanout(port, {"FANOUT_BROADCAST": "library"})  # the second: `frame`
    item_id = await stack.create_item()
    streams = [
        watch_item(f"ws://127.0.0.1:{port}", item_id, backoff_initial=0.05, backoff_max=0.5)
        for _ in range(20)
    ]
    received: list[list[LiveEvent]] = [[] for _ in streams]
    readers = [asyncio.create_task(collect(s, r)) for s, r in zip(streams, received, strict=True)]

    async def all_received() -> bool:
        return all(received)

    await eventually(all_received)
    last = await stack.bid_until(item_id, 40, [1, 3])
    first.kill()
    last = await stack.bid_until(item_id, 40, [1, 3])  # while no fan-out runs on the port
    second = await stack.start_fanout(port)
    last = await stack.bid_until(item_id, 40, [1, 3])

    async def all_caught_up() -> bool:
        return all(s.last_seq == last for s in streams)

    await eventually(all_caught_up, within=20)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for stream, events in zip(streams, received, strict=True):
        assert isinstance(events[0], Snapshot)
        assert not any(isinstance(e, Reset | Snapshot) for e in events[1:])
        seqs = [e.seq for e in events[1:] if isinstance(e, BidPlaced)]
        assert seqs == list(range(events[0].seq + 1, last + 1))
        assert stream.connects >= 2
        await stream.aclose()
    await second.stop()
    await first.stop()


async def test_sigterm_closes_viewers_with_1012_and_exits_promptly(fanout_stack: FanoutStack) -> None:
    """On SIGTERM every viewer gets close code 1012 (service restart) and the process exits at once."""
    stack = fanout_stack
    port = free_port()
    process = await stack.start_fanout(port)
    item_id = await stack.create_item()
    viewers = [await RawViewer.open(stack.url(item_id, port=port)) for _ in range(5)]
    await asyncio.gather(*(v.wait_for(lambda v: bool(v.messages)) for v in viewers))
    started = time.monotonic()
    assert await process.stop() == 0
    assert time.monotonic() - started < scaled(3)
    for viewer in viewers:
        assert await viewer.wait_closed() == 1012


async def test_slow_viewer_is_closed_with_1013_and_others_stay_fast(fanout_stack: FanoutStack) -> None:
    """A viewer that stops reading is closed with 1013 once its buffer passes the bound; others keep pace."""
    stack = fanout_stack
    port = free_port()
    await stack.start_fanout(
        port, {"FANOUT_SEND_BUFFER_BYTES": "32768", "FANOUT_SOCKET_SEND_BUFFER_BYTES": "8192"}
    )
    item_id = await stack.create_item()
    url = stack.url(item_id, port=port)
    fast = [await RawViewer.open(url) for _ in range(10)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    slow = await connect(url, sock=sock, proxy=None, compression=None, max_queue=1)
    await slow.recv()  # the snapshot; after this it reads nothing
    slow.transport.pause_reading()
    for _ in range(8):
        await stack.bid_until(item_id, 250, [250])
        if (await stack.metrics(port)).get('fanout_viewers_closed_total{reason="slow"}', 0) >= 1:
            break
    assert (await stack.metrics(port))['fanout_viewers_closed_total{reason="slow"}'] == 1
    latencies = []
    for _ in range(5):
        sent = time.monotonic()
        (seq,) = await stack.bid(item_id, 1)
        await asyncio.gather(*(v.wait_seq(seq) for v in fast))
        latencies.append(max(v.arrivals[seq] for v in fast) - sent)
    assert max(latencies) < scaled(0.25), latencies
    slow.transport.resume_reading()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(scaled(10)):
            async for _ in slow:
                pass
    assert slow.close_code == 1013
    for viewer in fast:
        assert viewer.close_code is None
        assert viewer.event_seqs == list(range(2, viewer.event_seqs[-1] + 1))
        await viewer.close()


async def test_two_processes_share_the_port_with_sharded_pubsub(
    fanout_stack: FanoutStack, redis_server: RedisServer
) -> None:
    """Two fan-out processes on one port (SO_REUSEPORT), SSUBSCRIBE against a SPUBLISHing bidder."""
    stack = fanout_stack
    bidder_port = free_port()
    bidder = bidder_process(
        redis_server.url, bidder_port, sink=stack.sink, log_path=stack.logs / "sharded-bidder.log",
        extra_env={"BIDDER_SHARDED_PUBSUB": "true"}, name="sbidder",
    )  # fmt: skip
    await bidder.start()
    target = f"127.0.0.1:{bidder_port}"
    channel = grpc.aio.insecure_channel(target)
    sharded = FanoutStack(
        stack.redis_url,
        target,
        bidder_pb2_grpc.BidderServiceStub(channel),
        free_port(),
        stack.logs,
        stack.sink,
    )
    try:
        for _ in range(2):
            await sharded.start_fanout(sharded=True)
        assert len({p.pid for p in sharded.processes}) == 2
        item_id = await sharded.create_item()
        viewers = [await RawViewer.open(sharded.url(item_id)) for _ in range(30)]
        await asyncio.gather(*(v.wait_for(lambda v: bool(v.messages)) for v in viewers))
        last = await sharded.bid_until(item_id, 50, [1, 5])
        await asyncio.gather(*(v.wait_seq(last) for v in viewers))
        for viewer in viewers:
            assert viewer.event_seqs == list(range(2, last + 1))
            await viewer.close()
    finally:
        for process in sharded.processes:
            await process.stop()
        await channel.close(grace=None)
        await bidder.stop()


async def test_sdk_raises_for_an_unknown_item(fanout_stack: FanoutStack) -> None:
    """The SDK ends the iteration with LiveItemNotFound on close code 4404 instead of retrying."""
    stream = watch_item(fanout_stack.base_url, "nope", backoff_initial=0.01)
    with pytest.raises(LiveItemNotFound):
        async for _ in stream:
            pass
    assert stream.connects == 1
