"""The write path as it runs in production: a bidder process and an edge process per strategy."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.ports import free_port
from devstack.servers import RedisServer
from devstack.services import bidder_process, edge_process
from devstack.tokens import mint_token
from tests.conftest import service_sink


@dataclass
class RestStack:
    strategy: str
    base_url: str
    secret: str

    def token(self, sub: str, role: str = "bidder") -> str:
        return mint_token(self.secret, sub, role, ttl_seconds=3600)

    def auth(self, sub: str, role: str = "bidder") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, role)}"}

    async def create_item(self, client: httpx.AsyncClient, **overrides: object) -> dict[str, object]:
        body: dict[str, object] = {
            "title": "Bicycle", "currency": "USD", "starting_price": 100, "min_increment": 10,
            "ends_at": "2099-01-01T00:00:00.000Z",
        }  # fmt: skip
        body.update(overrides)
        response = await client.post(f"{self.base_url}/items", json=body, headers=self.auth("root", "admin"))
        assert response.status_code == 201, response.text
        item: dict[str, object] = response.json()
        return item


@contextlib.asynccontextmanager
async def running_rest_stack(redis_url: str, strategy: str) -> AsyncIterator[RestStack]:
    """A bidder process and an edge process on free ports, stopped afterwards."""
    logs = Path(tempfile.mkdtemp(prefix="auction-stack-"))
    sink = service_sink()
    secret = secrets.token_urlsafe(32)
    bidder_port, edge_port = free_port(), free_port()
    bidder = bidder_process(
        redis_url, bidder_port, strategy=strategy, sink=sink, log_path=logs / "bidder.log"
    )
    edge = edge_process(f"127.0.0.1:{bidder_port}", edge_port, secret, sink=sink, log_path=logs / "edge.log")
    await bidder.start()
    try:
        await edge.start()
        try:
            yield RestStack(strategy, f"http://127.0.0.1:{edge_port}", secret)
        finally:
            await edge.stop()
    finally:
        await bidder.stop()


@pytest.fixture(scope="module", params=["lua", "watch"])
async def rest_stack(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[RestStack]:
    """The write path for each strategy."""
    async with running_rest_stack(redis_server.url, request.param) as stack:
        yield stack


@pytest.fixture(scope="module")
async def lua_stack(redis_server: RedisServer) -> AsyncIterator[RestStack]:
    """The write path as deployed (Lua), for tests that need it once."""
    async with running_rest_stack(redis_server.url, "lua") as stack:
        yield stack
