"""Per client address limits beside the per-bidder one: reads (which need no token) and failed
authentications, 429 problem+json with Retry-After, keyed by IPv4 address or IPv6 /64, bounded in
memory, and switched off by a rate of 0."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from edge_gateway.app import create_app
from edge_gateway.ratelimit import RateLimiter, client_key
from tests.test_edge_http_protocol import serving
from tests.test_edge_requests import assert_problem
from tests.test_edge_support import bearer, fake_upstream, make_settings, make_token

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from edge_gateway.settings import EdgeSettings


@asynccontextmanager
async def app_with_clients(settings: EdgeSettings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running; `client(address)` speaks to it from that address."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://edge.test")


async def test_reads_over_the_budget_of_an_address_are_429() -> None:
    """Burst 2: the third read from one address is 429 with Retry-After; another address, health
    checks and bids are not affected."""
    async with fake_upstream() as upstream:
        settings = make_settings(
            bidder_target=upstream.target, read_rate_limit_per_second=0.5, read_rate_limit_burst=2
        )
        async with (
            app_with_clients(settings) as app,
            client(app, "192.0.2.7") as eager,
            client(app, "192.0.2.8") as calm,
        ):
            statuses = [(await eager.get(path)).status_code for path in ("/items/lot-1", "/items")]
            assert statuses == [200, 200]
            limited = await eager.get("/items/lot-1")
            problem = assert_problem(limited, 429, "rate-limited")
            assert "reads" in problem["detail"]
            assert int(limited.headers["retry-after"]) >= 1
            assert (await eager.get("/healthz")).status_code == 200
            bid = await eager.post("/items/lot-1/bid", json={"amount": 1000}, headers=bearer(make_token()))
            assert bid.status_code == 201
            assert (await calm.get("/items/lot-1")).status_code == 200


async def test_bid_history_counts_as_a_read() -> None:
    async with fake_upstream() as upstream:
        settings = make_settings(
            history_target=upstream.target, read_rate_limit_per_second=0.5, read_rate_limit_burst=1
        )
        async with app_with_clients(settings) as app, client(app, "192.0.2.9") as http:
            assert (await http.get("/items/lot-1/bids")).status_code == 200
            assert_problem(await http.get("/items/lot-1/bids"), 429, "rate-limited")


async def test_failed_authentications_over_the_budget_are_429_but_good_tokens_pass() -> None:
    """Burst 2 of failures: the third bad token from one address is 429; a valid token from the same
    address still gets through (here to the 503 of the missing bidder), and other addresses get 401."""
    settings = make_settings(auth_failure_rate_limit_per_second=0.5, auth_failure_rate_limit_burst=2)
    body = {"amount": 100}
    bad = bearer(make_token(secret="wrong-secret-of-sufficient-length-1234"))
    async with (
        app_with_clients(settings) as app,
        client(app, "198.51.100.1") as guesser,
        client(app, "198.51.100.2") as other,
    ):
        answers = [await guesser.post("/items/lot-1/bid", json=body, headers=bad) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        problem = assert_problem(answers[2], 429, "rate-limited")
        assert "failed authentications" in problem["detail"]
        assert int(answers[2].headers["retry-after"]) >= 1
        assert_problem(await guesser.post("/items", json={}, headers={}), 429, "rate-limited")
        good = await guesser.post("/items/lot-1/bid", json=body, headers=bearer(make_token()))
        assert good.status_code == 503
        assert (await other.post("/items/lot-1/bid", json=body, headers=bad)).status_code == 401


async def test_ipv6_addresses_of_one_64_share_a_budget() -> None:
    settings = make_settings(read_rate_limit_per_second=0.5, read_rate_limit_burst=1)
    async with (
        app_with_clients(settings) as app,
        client(app, "2001:db8:1:2::1") as first,
        client(app, "2001:db8:1:2:ffff::9") as same_64,
        client(app, "2001:db8:1:3::1") as next_64,
    ):
        assert (await first.get("/items/lot-1")).status_code == 503  # no bidder: past the limit
        assert_problem(await same_64.get("/items/lot-1"), 429, "rate-limited")
        assert (await next_64.get("/items/lot-1")).status_code == 503


async def test_rate_zero_switches_the_address_limits_off() -> None:
    """For deployments behind a proxy, where every client has the proxy's address."""
    settings = make_settings(
        read_rate_limit_per_second=0, read_rate_limit_burst=1, auth_failure_rate_limit_per_second=0
    )
    async with app_with_clients(settings) as app, client(app, "192.0.2.10") as http:
        for _ in range(5):
            assert (await http.get("/items/lot-1")).status_code == 503
            assert (await http.post("/items/lot-1/bid", json={"amount": 1})).status_code == 401


def test_defaults_are_generous() -> None:
    settings = make_settings()
    assert (settings.read_rate_limit_per_second, settings.read_rate_limit_burst) == (200, 400)
    assert (settings.auth_failure_rate_limit_per_second, settings.auth_failure_rate_limit_burst) == (10, 20)
    assert settings.rate_limit_max_clients == 100_000


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8:0:0:abcd::1", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_client_key(host: str, key: str) -> None:
    assert client_key({"client": (host, 1)}) == key


def test_client_key_without_a_peer_address() -> None:
    """A unix socket has no peer address: all such callers share one bucket."""
    assert client_key({"client": None}) == client_key({}) == ""


class CountingLimiter(RateLimiter):
    evictions = 0

    def _evict(self, now: float) -> None:
        self.evictions += 1
        super()._evict(now)


def test_a_flood_of_new_addresses_costs_few_evictions() -> None:
    """New keys arrive just fast enough that one old bucket goes idle per insert: dropping only that
    one would rescan the whole table on every insert; the limiter frees half instead, so there is
    one eviction per 50 inserts into 100 slots."""
    clock: list[float] = [0.0]
    # Refill time 10 / 1.6 = 6.25 s; one insert every 6.25 / 100 s (both exact in binary).
    limiter = CountingLimiter(rate=1.6, burst=10, max_buckets=100, clock=lambda: clock[0])
    for i in range(10_000):
        clock[0] = i * 0.0625
        limiter.acquire(f"203.0.{i // 256}.{i % 256}")
        assert len(limiter) <= 100
    assert limiter.evictions <= 10_000 // 50 + 1


def test_mostly_idle_table_keeps_its_active_buckets() -> None:
    """Idle buckets go first; the active ones survive an eviction that idle ones could pay for."""
    clock: list[float] = [0.0]
    limiter = RateLimiter(rate=10.0, burst=10, max_buckets=100, clock=lambda: clock[0])
    for i in range(90):
        limiter.acquire(f"idle{i}")
    clock[0] = 5.0
    active: list[str] = [f"active{i}" for i in range(10)]
    for key in active:
        limiter.acquire(key)
    limiter.acquire("newcomer")
    kept: Any = limiter._buckets
    assert all(key in kept for key in active)
    assert len(limiter) == 11


@pytest.mark.parametrize(("trusted", "second_client_status"), [("127.0.0.1", 503), ("", 429)])
async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    trusted: str, second_client_status: int
) -> None:
    """Behind a load balancer every connection comes from the balancer: with EDGE_FORWARDED_ALLOW_IPS
    naming it, X-Forwarded-For is the client each budget belongs to; by default the header is ignored
    (anyone could send it), so two "clients" on one connection share the peer's budget."""
    settings = make_settings(
        read_rate_limit_per_second=0.5, read_rate_limit_burst=1, forwarded_allow_ips=trusted
    )
    async with serving(settings) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert (await http.get("/items/lot-1", headers=first)).status_code == 503  # past the limit
        assert (await http.get("/items/lot-1", headers={"X-Forwarded-For": "203.0.113.2"})).status_code == (
            second_client_status
        )
        assert (await http.get("/items/lot-1", headers=first)).status_code == 429
