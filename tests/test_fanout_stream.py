"""The WebSocket stream over real processes: delivery, snapshots, resume, errors and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as redis_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from auction.v1 import bidder_pb2
from auction_contract.redis_layout import item_keys
from auction_contract.wire_time import parse_ms
from edge_gateway.convert import item_json
from tests.conftest import scaled
from tests.fanout_fixtures import FanoutStack, RawViewer, eventually, fanout_stack

__all__ = ["fanout_stack"]


async def open_viewers(stack: FanoutStack, item_id: str, count: int) -> list[RawViewer]:
    viewers: list[RawViewer] = []
    for start in range(0, count, 50):
        batch = min(50, count - start)
        viewers += await asyncio.gather(*(RawViewer.open(stack.url(item_id)) for _ in range(batch)))
    await asyncio.gather(*(v.wait_for(lambda v: bool(v.messages)) for v in viewers))
    return viewers


async def test_every_viewer_gets_every_event_once_in_order(fanout_stack: FanoutStack) -> None:
    """200 viewers, 300 accepted bids (alone and grouped): each viewer gets seq 2..301 once, in order."""
    stack = fanout_stack
    item_id = await stack.create_item()
    viewers = await open_viewers(stack, item_id, 200)
    assert await stack.bid_until(item_id, 300, [1] * 10 + [10, 25]) == 301
    await asyncio.gather(*(v.wait_seq(301, within=30) for v in viewers))
    for viewer in viewers:
        assert viewer.messages[0]["type"] == "snapshot"
        assert viewer.messages[0]["seq"] == 1
        assert viewer.event_seqs == list(range(2, 302))
    redis = redis_asyncio.Redis.from_url(stack.redis_url)
    history: Any = await redis.xrange(item_keys(item_id, 16).events)
    await redis.aclose()
    sent = {orjson.loads(fields[b"e"])["seq"]: orjson.loads(fields[b"e"]) for _, fields in history}
    assert viewers[0].messages[1:] == [sent[s] for s in range(2, 302)]
    metrics = await stack.metrics()
    assert metrics["fanout_snapshot_calls_total"] < 200  # concurrent snapshot requests were coalesced
    await asyncio.gather(*(v.close() for v in viewers))


async def test_snapshot_is_the_rest_item(fanout_stack: FanoutStack) -> None:
    """The snapshot's item is exactly what the REST edge renders for GET /items/{id}."""
    item_id = await fanout_stack.create_item()
    await fanout_stack.bid_until(item_id, 3, [1])
    viewer = await RawViewer.open(fanout_stack.url(item_id))
    await viewer.wait_for(lambda v: bool(v.messages))
    reply = await fanout_stack.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id))
    assert viewer.messages[0] == {"type": "snapshot", "item": item_json(reply.item), "seq": 4}
    await viewer.close()


async def test_resume_with_since_gets_exactly_the_missed_events(fanout_stack: FanoutStack) -> None:
    """A viewer that reconnects with since=N gets N+1.. from the history, then live, with no snapshot."""
    stack = fanout_stack
    item_id = await stack.create_item()
    first = await RawViewer.open(stack.url(item_id))
    await stack.bid_until(item_id, 10, [1, 3])
    await first.wait_seq(11)
    await first.close()
    await stack.bid_until(item_id, 10, [3, 1])
    again = await RawViewer.open(stack.url(item_id, since=11))
    await again.wait_seq(21)
    await stack.bid_until(item_id, 5, [1])
    await again.wait_seq(26)
    assert again.types[0] == "bid"
    assert again.event_seqs == list(range(12, 27))
    await again.close()


async def test_resume_from_start_and_from_the_head(fanout_stack: FanoutStack) -> None:
    """since=0 replays the item from its `created` event; since=head sends only later events."""
    stack = fanout_stack
    item_id = await stack.create_item()
    await stack.bid_until(item_id, 4, [1])
    everything = await RawViewer.open(stack.url(item_id, since=0))
    caught_up = await RawViewer.open(stack.url(item_id, since=5))
    await everything.wait_seq(5)
    await stack.bid(item_id, 1)
    await everything.wait_seq(6)
    await caught_up.wait_seq(6)
    assert everything.types[0] == "created"
    assert everything.event_seqs == [1, 2, 3, 4, 5, 6]
    assert caught_up.event_seqs == [6]
    await everything.close()
    await caught_up.close()


async def test_resume_past_the_history_gets_reset_and_snapshot(fanout_stack: FanoutStack) -> None:
    """When the history no longer holds the missed events (or since is beyond it): reset, snapshot, live."""
    stack = fanout_stack
    item_id = await stack.create_item()
    await stack.bid_until(item_id, 20, [1])
    redis = redis_asyncio.Redis.from_url(stack.redis_url)
    await redis.xtrim(item_keys(item_id, 16).events, minid="15-0", approximate=False)
    await redis.aclose()
    trimmed = await RawViewer.open(stack.url(item_id, since=5))
    future = await RawViewer.open(stack.url(item_id, since=500))
    for viewer in (trimmed, future):
        await viewer.wait_for(lambda v: len(v.messages) >= 2)
    await stack.bid_until(item_id, 2, [1])
    for viewer in (trimmed, future):
        await viewer.wait_seq(23)
        assert viewer.types[:2] == ["reset", "snapshot"]
        assert viewer.messages[1]["seq"] == 21
        assert viewer.event_seqs == [22, 23]
        await viewer.close()


async def test_unknown_item_gets_error_then_4404(fanout_stack: FanoutStack) -> None:
    """An unknown (or malformed) item id: an error message, then close code 4404."""
    for item_id in ("no-such-item", "bad%20id"):
        viewer = await RawViewer.open(fanout_stack.url(item_id))
        assert await viewer.wait_closed() == 4404
        assert viewer.messages[0]["type"] == "error"
        assert viewer.messages[0]["code"] == "item-not-found"
    resumed = await RawViewer.open(fanout_stack.url("no-such-item", since=3))
    assert await resumed.wait_closed() == 4404


async def test_origin_allow_list_is_enforced_at_the_handshake(fanout_stack: FanoutStack) -> None:
    """A disallowed Origin gets HTTP 403 before any WebSocket exists; allowed or absent Origins connect."""
    item_id = await fanout_stack.create_item()
    with pytest.raises(InvalidStatus) as refused:
        await connect(fanout_stack.url(item_id), origin="https://evil.example", proxy=None)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    for origin in ("https://viewer.example", None):
        viewer = await RawViewer.open(fanout_stack.url(item_id), origin=origin)
        await viewer.wait_for(lambda v: bool(v.messages))
        assert viewer.types == ["snapshot"]
        await viewer.close()


async def test_http_endpoints_and_bad_requests(fanout_stack: FanoutStack) -> None:
    """/healthz and /metrics on the WebSocket port; a bad `since` is 400, other paths 404."""
    base = f"http://127.0.0.1:{fanout_stack.port}"
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(5)) as client:
        health = await client.get(f"{base}/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        metrics = await client.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert "fanout_viewers" in metrics.text
        assert (await client.get(f"{base}/nope")).status_code == 404
    for query in ("since=-1", "since=abc", "since=1&since=2"):
        with pytest.raises(InvalidStatus) as bad:
            await connect(f"ws://127.0.0.1:{fanout_stack.port}/ws/items/x?{query}", proxy=None)
        assert bad.value.response.status_code == 400


async def test_oversized_client_frame_is_refused(fanout_stack: FanoutStack) -> None:
    """Viewers have nothing big to say: a frame above the limit closes the connection with 1009."""
    item_id = await fanout_stack.create_item()
    viewer = await RawViewer.open(fanout_stack.url(item_id))
    await viewer.wait_for(lambda v: bool(v.messages))
    await viewer.ws.send("x" * 100_000)
    assert await viewer.wait_closed() == 1009


async def test_lost_pubsub_messages_are_recovered_from_history(
    fanout_stack: FanoutStack, redis_client: redis_asyncio.Redis
) -> None:
    """The fan-out's Pub/Sub connection is killed while bids flow: viewers still get every seq once."""
    stack = fanout_stack
    item_id = await stack.create_item()
    viewers = await open_viewers(stack, item_id, 5)
    catch_ups = (await stack.metrics())["fanout_resubscribe_catch_ups_total"]
    last = 1
    for _ in range(3):
        killed = await redis_client.client_kill_filter(_type="pubsub")
        assert killed >= 1
        last = await stack.bid_until(item_id, 4, [2])  # published while the fan-out reconnects

        async def resubscribed(seen: float = catch_ups) -> bool:
            return (await stack.metrics())["fanout_resubscribe_catch_ups_total"] > seen

        await eventually(resubscribed)
        catch_ups += 1
        last = await stack.bid_until(item_id, 4, [1, 2])
    await asyncio.gather(*(v.wait_seq(last) for v in viewers))
    for viewer in viewers:
        assert viewer.event_seqs == list(range(2, last + 1))
    await asyncio.gather(*(v.close() for v in viewers))


async def test_every_frame_and_snapshot_carries_the_server_time(fanout_stack: FanoutStack) -> None:
    """So a countdown can be corrected for the viewer's clock (CONTRACT.md "Auction lifecycle")."""
    item_id = await fanout_stack.create_item()
    viewer = await RawViewer.open(fanout_stack.url(item_id))
    try:
        await viewer.wait_for(lambda v: len(v.messages) >= 1)
        await fanout_stack.bid(item_id, 3)
        await viewer.wait_for(lambda v: len(v.seqs) >= 3)
    finally:
        await viewer.close()
    assert viewer.server_times
    for stamp in viewer.server_times:
        assert stamp is not None
        assert abs(parse_ms(stamp.replace("Z", "+00:00")) - time.time() * 1000) < 60_000
