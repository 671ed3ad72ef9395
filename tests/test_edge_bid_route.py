"""The raw bid route (`bid_route.RawBidRoute`) answers exactly as the FastAPI route it stands in for.

Each case is sent to two gateways built alike except for `raw_bid_route`, each over its own fake bidder
scripted the same way, and the answers must agree byte for byte: status, header fields and body.
Requests it must not take (other methods, paths, a trailing slash) reach FastAPI.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest

from auction.v1 import bidder_pb2
from edge_gateway.bid_route import bid_item_id
from tests.test_edge_requests import BAD_BID_BODIES
from tests.test_edge_support import (
    Rejection,
    Upstream,
    bearer,
    fake_upstream,
    make_settings,
    make_token,
    running_app,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BIDDER = bearer(make_token())
ADMIN = bearer(make_token(sub="root", role="admin"))
JSON = {"content-type": "application/json"}


@dataclass
class Gateway:
    client: httpx.AsyncClient
    upstream: Upstream


@dataclass
class Pair:
    raw: Gateway
    reference: Gateway

    def script(self, rejection: Rejection | None) -> None:
        self.raw.upstream.bidder.reject = rejection
        self.reference.upstream.bidder.reject = rejection

    async def both(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send to both; assert equal answers; return the raw route's."""
        raw = await self.raw.client.request(method, path, **kwargs)
        reference = await self.reference.client.request(method, path, **kwargs)
        assert raw.status_code == reference.status_code, (raw.text, reference.text)
        assert sorted(raw.headers.multi_items()) == sorted(reference.headers.multi_items())
        assert raw.content == reference.content
        return raw


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with AsyncExitStack() as stack:
        gateways = []
        for raw in (True, False):
            upstream = await stack.enter_async_context(fake_upstream())
            settings = make_settings(
                bidder_target=upstream.target,
                raw_bid_route=raw,
                max_body_bytes=1024,
                rate_limit_per_second=1,
                rate_limit_burst=40,
                auth_failure_rate_limit_per_second=1,
                auth_failure_rate_limit_burst=6,
            )
            _, client = await stack.enter_async_context(running_app(settings))
            gateways.append(Gateway(client, upstream))
        yield Pair(*gateways)


def bid(amount: object = 1000, **headers: str) -> dict[str, Any]:
    return {"json": {"amount": amount}, "headers": {**BIDDER, **headers}}


async def test_accepted_bids_and_replays_agree(pair: Pair) -> None:
    for amount in (1000, 1100, 1200.0, 1e4):
        assert (await pair.both("POST", "/items/lot-1/bid", **bid(amount))).status_code == 201
    keyed = bid(20_000, **{"Idempotency-Key": "k-1"})
    assert (await pair.both("POST", "/items/lot-1/bid", **keyed)).status_code == 201
    admin = {"json": {"amount": 30_000}, "headers": ADMIN}
    assert (await pair.both("POST", "/items/lot-1/bid", **admin)).status_code == 201
    assert len(pair.raw.upstream.bidder.calls) == len(pair.reference.upstream.bidder.calls) == 6
    keyed_call = pair.raw.upstream.bidder.calls[-2]
    assert isinstance(keyed_call, bidder_pb2.PlaceBidRequest)
    assert keyed_call.idempotency_key == "k-1"


BID_KINDS = {
    "maximum alone": ({"max_amount": 5000}, 0, 5000),
    "amount and maximum": ({"amount": 1200, "max_amount": 5000}, 1200, 5000),
    "maximum equal to amount": ({"amount": 1200, "max_amount": 1200.0}, 1200, 1200),
    "null maximum": ({"amount": 1300, "max_amount": None}, 1300, None),
    "null amount": ({"amount": None, "max_amount": 4000}, 0, 4000),
}


@pytest.mark.parametrize(("body", "amount", "max_amount"), BID_KINDS.values(), ids=BID_KINDS.keys())
async def test_bid_kinds_agree_and_reach_the_bidder_as_sent(
    pair: Pair, body: dict[str, Any], amount: int, max_amount: int | None
) -> None:
    """A maximum goes to the bidder as `max_amount` (amount 0 when alone); both routes answer alike,
    with `leading`, and neither answer repeats the maximum."""
    response = await pair.both("POST", "/items/lot-1/bid", json=body, headers=BIDDER)
    assert response.status_code == 201
    assert response.json()["leading"] is True
    if max_amount is not None and max_amount != amount:
        assert str(max_amount) not in response.text
    for gateway in (pair.raw, pair.reference):
        call = gateway.upstream.bidder.calls[-1]
        assert isinstance(call, bidder_pb2.PlaceBidRequest)
        assert call.amount == amount
        assert (call.max_amount if call.HasField("max_amount") else None) == max_amount


@pytest.mark.parametrize("body", BAD_BID_BODIES.values(), ids=BAD_BID_BODIES.keys())
async def test_bad_bodies_agree(pair: Pair, body: bytes) -> None:
    response = await pair.both("POST", "/items/lot-1/bid", content=body, headers={**BIDDER, **JSON})
    assert response.status_code in (413, 422)
    assert not pair.raw.upstream.bidder.calls


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic YTpi"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer not-a-jwt"},
        bearer(make_token(expires_in=-60)),
        bearer(make_token(role="viewer")),
        bearer(make_token(expires_in=10**6)),
    ],
    ids=["none", "basic", "empty", "garbage", "expired", "role", "too-long-lived"],
)
async def test_authentication_failures_agree(pair: Pair, headers: dict[str, str]) -> None:
    response = await pair.both("POST", "/items/lot-1/bid", json={"amount": 1000}, headers=headers)
    assert response.status_code == 401


async def test_spent_auth_failure_budget_agrees(pair: Pair) -> None:
    statuses = [
        (await pair.both("POST", "/items/lot-1/bid", json={"amount": 1}, headers={})).status_code
        for _ in range(8)
    ]
    assert statuses[:6] == [401] * 6
    assert statuses[6:] == [429, 429]


async def test_bidder_rate_limit_agrees(pair: Pair) -> None:
    statuses = [(await pair.both("POST", "/items/lot-1/bid", **bid(1000 + n))).status_code for n in range(42)]
    assert statuses.count(201) == 40
    assert statuses[-1] == 429


@pytest.mark.parametrize(
    "key",
    ["", "x" * 129, "has space", "tab\tinside", "caf\u00e9", "\x7f", "x" * 128],
    ids=["empty", "129", "space", "tab", "non-ascii", "DEL", "128"],
)
async def test_idempotency_keys_agree(pair: Pair, key: str) -> None:
    headers = [*BIDDER.items(), ("Idempotency-Key", key)]
    raw_headers = [(name.encode(), value.encode()) for name, value in headers]
    response = await pair.both("POST", "/items/lot-1/bid", json={"amount": 1000}, headers=raw_headers)
    assert response.status_code == (201 if key == "x" * 128 else 422)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/items/lot-unknown/bid", 404),
        ("/items/" + "x" * 65 + "/bid", 404),
        ("/items/bad%20id/bid", 404),
        ("/items/%2F/bid", 404),
    ],
    ids=["unknown", "too-long", "space", "slash"],
)
async def test_item_ids_agree(pair: Pair, path: str, status: int) -> None:
    assert (await pair.both("POST", path, **bid())).status_code == status


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/json; charset=latin-1", "application/json; charset=UTF-8"],
)
async def test_content_types_agree(pair: Pair, content_type: str | None) -> None:
    headers = {**BIDDER, **({"content-type": content_type} if content_type else {})}
    response = await pair.both("POST", "/items/lot-1/bid", content=b'{"amount": 1000}', headers=headers)
    assert response.status_code == (201 if content_type and "UTF-8" in content_type else 415)


async def test_body_limits_agree(pair: Pair) -> None:
    headers = {**BIDDER, **JSON}
    declared = await pair.both("POST", "/items/lot-1/bid", content=b" " * 2048, headers=headers)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 512

    # A streamed body has no declared length: counted while it arrives.
    raw = await pair.raw.client.post("/items/lot-1/bid", content=chunks(), headers=headers)
    reference = await pair.reference.client.post("/items/lot-1/bid", content=chunks(), headers=headers)
    assert raw.status_code == reference.status_code == 413
    assert raw.content == reference.content


@pytest.mark.parametrize(
    "rejection",
    [
        Rejection(
            grpc.StatusCode.FAILED_PRECONDITION, reason="BID_TOO_LOW", metadata={"min_next_bid": "1050"}
        ),
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, reason="AUCTION_CLOSED"),
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, reason="AUCTION_NOT_OPEN"),
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, reason="BUY_NOW_UNAVAILABLE"),
        Rejection(grpc.StatusCode.INVALID_ARGUMENT, reason="IDEMPOTENCY_KEY_REUSED"),
        Rejection(grpc.StatusCode.INVALID_ARGUMENT, message="max_amount must be at least amount"),
        Rejection(grpc.StatusCode.UNAVAILABLE),
        Rejection(grpc.StatusCode.RESOURCE_EXHAUSTED),
        Rejection(grpc.StatusCode.INTERNAL, message="secret internals"),
    ],
    ids=[
        "too-low", "closed", "not-open", "buy-now-gone", "key-reused", "invalid", "unavailable",
        "exhausted", "internal",
    ],
)  # fmt: skip
async def test_bidder_refusals_agree(pair: Pair, rejection: Rejection) -> None:
    pair.script(rejection)
    for body in ({"amount": 1000}, {"max_amount": 9000}, {"amount": 1000, "max_amount": 9000}):
        response = await pair.both("POST", "/items/lot-1/bid", json=body, headers=BIDDER)
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret internals" not in response.text
        assert "9000" not in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/items/lot-1/bid"),
        ("HEAD", "/items/lot-1/bid"),
        ("OPTIONS", "/items/lot-1/bid"),
        ("PUT", "/items/lot-1/bid"),
        ("POST", "/items/lot-1/bid/"),
        ("POST", "/items/lot-1/bids"),
        ("POST", "/items//bid"),
    ],
)
async def test_requests_it_does_not_take_reach_fastapi_alike(pair: Pair, method: str, path: str) -> None:
    response = await pair.both(method, path, **bid())
    assert response.status_code in (307, 404, 405, 204)


@pytest.mark.parametrize(
    ("path", "item_id"),
    [
        ("/items/lot-1/bid", "lot-1"),
        ("/items/a/bid", "a"),
        ("/items//bid", None),
        ("/items/a/b/bid", None),
        ("/items/a/bid/", None),
        ("/itemsx/a/bid", None),
        ("/items/bid", None),
    ],
)
def test_bid_item_id_takes_exactly_the_route_template(path: str, item_id: str | None) -> None:
    assert bid_item_id(path) == item_id


async def test_raw_route_counts_its_answers_in_the_metrics(pair: Pair) -> None:
    await pair.both("POST", "/items/lot-1/bid", **bid())
    await pair.both("POST", "/items/lot-1/bid", json={"amount": 1}, headers={})
    for gateway in (pair.raw, pair.reference):
        text = (await gateway.client.get("/metrics")).text
        assert 'edge_http_requests_total{method="POST",route="/items/{item_id}/bid",status="201"} 1.0' in text
        assert 'edge_http_requests_total{method="POST",route="/items/{item_id}/bid",status="401"} 1.0' in text
