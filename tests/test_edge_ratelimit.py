"""The per-bidder token bucket: bursts, refill, Retry-After, bounded memory, and the 429 answer."""

from __future__ import annotations

import pytest

from edge_gateway.problems import ProblemError
from edge_gateway.ratelimit import RateLimiter
from tests.test_edge_support import bearer, make_settings, make_token, running_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    """`burst` requests pass at once, then one per 1/rate seconds."""
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("alice") for _ in range(4)] == [0, 0, 0, 1]
    clock.now += 0.5
    assert limiter.acquire("alice") == 0
    assert limiter.acquire("alice") == 1


def test_buckets_are_per_bidder() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.acquire("alice") == 0
    assert limiter.acquire("alice") >= 1
    assert limiter.acquire("bob") == 0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    """Slow rates give longer waits, rounded up, never 0."""
    clock = FakeClock()
    slow = RateLimiter(rate=0.1, burst=1, clock=clock)
    slow.acquire("alice")
    assert slow.acquire("alice") == 10
    fast = RateLimiter(rate=1000.0, burst=1, clock=clock)
    fast.acquire("alice")
    assert fast.acquire("alice") == 1


def test_check_raises_429_problem() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    limiter.check("alice")
    with pytest.raises(ProblemError) as raised:
        limiter.check("alice")
    assert raised.value.status == 429
    assert raised.value.headers == {"Retry-After": "1"}


def test_idle_buckets_are_evicted() -> None:
    """Past max_buckets, refilled (idle) buckets go first; the table never exceeds the bound."""
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=10, max_buckets=100, clock=clock)
    for i in range(100):
        limiter.acquire(f"idle{i}")
    clock.now += 5.0  # everyone refilled
    limiter.acquire("active")
    limiter.acquire("newcomer")
    assert len(limiter) <= 100
    assert len(limiter) == 2


def test_memory_is_bounded_even_when_everyone_is_active() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=5, max_buckets=50, clock=clock)
    for i in range(1000):
        limiter.acquire(f"user{i}")
        assert len(limiter) <= 50


async def test_over_limit_bid_is_429_with_retry_after() -> None:
    """The third bid in a burst of two is a 429 problem with an integer Retry-After >= 1."""
    settings = make_settings(rate_limit_per_second=0.5, rate_limit_burst=2)
    async with running_app(settings) as (_, client):
        headers = bearer(make_token(sub="eager"))
        answers = [
            await client.post("/items/lot-1/bid", json={"amount": 100}, headers=headers) for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [503, 503, 429]  # 503: no bidder behind this edge
        limited = answers[2]
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["type"] == "rate-limited"
        assert int(limited.headers["retry-after"]) >= 1
        other = await client.post(
            "/items/lot-1/bid", json={"amount": 100}, headers=bearer(make_token(sub="calm"))
        )
        assert other.status_code == 503


async def test_create_item_is_rate_limited_too() -> None:
    settings = make_settings(rate_limit_per_second=0.5, rate_limit_burst=1)
    async with running_app(settings) as (_, client):
        headers = bearer(make_token(sub="root", role="admin"))
        body = {
            "title": "t",
            "currency": "EUR",
            "starting_price": 1,
            "min_increment": 1,
            "ends_at": "2099-01-01T00:00:00Z",
        }
        assert (await client.post("/items", json=body, headers=headers)).status_code == 503
        assert (await client.post("/items", json=body, headers=headers)).status_code == 429
