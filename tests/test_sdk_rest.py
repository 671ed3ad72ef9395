"""The SDK against the real edge and bidder: every call once, the error tree, retries, the sync client."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from auction import (
    AsyncAuctionClient,
    AuctionClient,
    AuctionClosed,
    AuctionNotOpen,
    BidTooLow,
    Forbidden,
    IdempotencyKeyReused,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from auction.models import Item
from devstack.ports import free_port
from devstack.processes import http_ok
from devstack.services import edge_process
from tests.stack_fixtures import RestStack, lua_stack

__all__ = ["lua_stack"]

FAR = datetime(2099, 1, 1, tzinfo=UTC)
QUICK = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2)


async def new_item(stack: RestStack, **kw: object) -> Item:
    async with AsyncAuctionClient(stack.base_url, stack.token("root", "admin")) as admin:
        fields: dict[str, object] = {
            "currency": "USD", "starting_price": 1000, "min_increment": 100, "ends_at": FAR, **kw,
        }  # fmt: skip
        return await admin.create_item("Teapot", **fields)  # type: ignore[arg-type]


async def test_items_are_created_read_and_listed_page_by_page(lua_stack: RestStack) -> None:
    """create_item, get_item, list_items and iter_items walk every page once."""
    made = [await new_item(lua_stack) for _ in range(5)]
    async with AsyncAuctionClient(lua_stack.base_url) as anyone:
        got = await anyone.get_item(made[0].id)
        assert got == made[0]
        page = await anyone.list_items(limit=2)
        assert len(page.items) == 2
        assert page.next_cursor
        seen = [item.id async for item in anyone.iter_items(page_size=2)]
    assert len(seen) == len(set(seen))
    assert {m.id for m in made} <= set(seen)


async def test_bids_and_their_errors_map_to_the_exception_tree(lua_stack: RestStack) -> None:
    """Accepted bids return typed results; each refusal raises its own exception class."""
    item = await new_item(lua_stack)
    later = await new_item(lua_stack, starts_at=FAR - timedelta(days=1))
    brief = await new_item(lua_stack, ends_at=datetime.now(UTC) + timedelta(seconds=0.4))
    async with AsyncAuctionClient(lua_stack.base_url, lua_stack.token("ann")) as ann:
        result = await ann.place_bid(item.id, 1000)
        assert (result.seq, result.item.current_price, result.item.highest_bidder) == (2, 1000, "ann")
        with pytest.raises(BidTooLow) as low:
            await ann.place_bid(item.id, 1050)
        assert low.value.min_next_bid == 1100
        assert low.value.status == 409
        with pytest.raises(AuctionNotOpen):
            await ann.place_bid(later.id, 1000)
        await asyncio.sleep(0.6)
        with pytest.raises(AuctionClosed):
            await ann.place_bid(brief.id, 1000)
        with pytest.raises(NotFound):
            await ann.place_bid("no-such-item", 1000)
        with pytest.raises(ValidationFailed) as invalid:
            await ann.place_bid(item.id, 0)
        assert invalid.value.errors
        await ann.place_bid(item.id, 1200, idempotency_key="same")
        with pytest.raises(IdempotencyKeyReused):
            await ann.place_bid(item.id, 1300, idempotency_key="same")
        with pytest.raises(Forbidden):
            await ann.create_item("Nope", currency="USD", starting_price=1, min_increment=1, ends_at=FAR)
    async with AsyncAuctionClient(lua_stack.base_url) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.place_bid(item.id, 5000)


class DropFirstResponse:
    """A TCP proxy that forwards the first request but drops its response, like a lost answer."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> DropFirstResponse:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop = self.connections == 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, forward: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if not forward:
                        break  # the upstream answered; the caller never hears it
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, not drop))


async def test_a_bid_whose_answer_is_lost_is_retried_and_placed_once(lua_stack: RestStack) -> None:
    """The retry carries the same Idempotency-Key: one bid, and the caller gets its answer."""
    item = await new_item(lua_stack)
    edge_port = int(lua_stack.base_url.rsplit(":", 1)[1])
    async with DropFirstResponse(edge_port) as proxy:
        async with AsyncAuctionClient(
            f"http://127.0.0.1:{proxy.port}", lua_stack.token("bo"), retry=QUICK
        ) as bo:
            result = await bo.place_bid(item.id, 1000)
        assert proxy.connections == 2
    assert result.seq == 2
    async with AsyncAuctionClient(lua_stack.base_url) as anyone:
        final = await anyone.get_item(item.id)
    assert (final.bid_count, final.seq, final.current_price) == (1, 2, 1000)


async def test_rate_limit_and_outage_are_retried_then_raised(lua_stack: RestStack) -> None:
    """429 waits Retry-After and succeeds; a dead bidder is 503 ServiceUnavailable after the retries."""
    port = free_port()
    edge = edge_process(
        "127.0.0.1:1", port, lua_stack.secret, sink=lambda _n, _l: None,
        extra_env={"EDGE_RATE_LIMIT_PER_SECOND": "1", "EDGE_RATE_LIMIT_BURST": "1"},
    )  # fmt: skip
    edge.ready = http_ok(f"http://127.0.0.1:{port}/healthz")  # /readyz fails: no bidder, on purpose
    await edge.start()
    try:
        url = f"http://127.0.0.1:{port}"
        async with AsyncAuctionClient(url, lua_stack.token("cy"), retry=RetryPolicy(attempts=1)) as once:
            with pytest.raises(ServiceUnavailable) as down:
                await once.place_bid("it0", 100)
            assert down.value.retry_after == 1
            with pytest.raises(RateLimited) as limited:
                await once.place_bid("it0", 100)
            assert limited.value.retry_after is not None
            assert limited.value.retry_after >= 1
        async with AsyncAuctionClient(
            url, lua_stack.token("cy"), retry=RetryPolicy(attempts=3, max_wait=2)
        ) as patient:
            with pytest.raises(ServiceUnavailable):  # waited out the 429, then hit the dead bidder
                await patient.place_bid("it0", 100)
    finally:
        await edge.stop()


async def test_the_sync_client_wraps_the_async_one(lua_stack: RestStack) -> None:
    """AuctionClient does the same calls, blocking, with the same errors."""
    item = await new_item(lua_stack)

    def use_sync() -> tuple[int, int, list[str]]:
        with AuctionClient(lua_stack.base_url, lua_stack.token("dee")) as dee:
            placed = dee.place_bid(item.id, 1000)
            try:
                dee.place_bid(item.id, 1000)
            except BidTooLow as exc:
                minimum = exc.min_next_bid
            ids = [i.id for i in dee.iter_items(page_size=3)]
            assert dee.ready()
            return placed.seq, minimum, ids

    seq, minimum, ids = await asyncio.to_thread(use_sync)
    assert (seq, minimum) == (2, 1100)
    assert item.id in ids
