"""REST <-> gRPC translation against a real gRPC server scripted by the test (not the real bidder).

These check what the edge sends (bidder = token sub, idempotency key, enum and paging mapping) and how
it renders what comes back, including rich-status rejections, over real gRPC channels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from auction.v1 import bidder_pb2, item_pb2
from tests.conftest import TIME_UNIT
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

    import httpx

ALICE = bearer(make_token(sub="alice"))
ADMIN = bearer(make_token(sub="root", role="admin"))


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with fake_upstream() as running:
        yield running


@pytest.fixture
async def client(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(bidder_target=upstream.target, history_target=upstream.target)
    async with running_app(settings) as (_, http):
        yield http


async def test_bid_is_placed_as_the_token_subject(client: httpx.AsyncClient, upstream: Upstream) -> None:
    """201 with bid_id, seq, amount, leading and the item after the bid; the bidder is the token's sub."""
    response = await client.post(
        "/items/lot-1/bid", json={"amount": 1000}, headers={**ALICE, "Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["bid_id", "seq", "amount", "leading", "item"]
    assert (body["bid_id"], body["seq"], body["amount"], body["leading"]) == ("bid-2", 2, 1000, True)
    assert body["item"]["highest_bidder"] == "alice"
    assert body["item"]["current_price"] == 1000
    assert body["item"]["min_next_bid"] == 1050
    (sent,) = upstream.bidder.calls
    assert isinstance(sent, bidder_pb2.PlaceBidRequest)
    assert (sent.item_id, sent.bidder, sent.amount, sent.idempotency_key) == ("lot-1", "alice", 1000, "k-1")


async def test_bid_without_key_sends_empty_key(client: httpx.AsyncClient, upstream: Upstream) -> None:
    assert (await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=ALICE)).status_code == 201
    (sent,) = upstream.bidder.calls
    assert isinstance(sent, bidder_pb2.PlaceBidRequest)
    assert sent.idempotency_key == ""


async def test_same_answer_renders_byte_identical(client: httpx.AsyncClient) -> None:
    """The bidder replays the first outcome for a repeated key; the edge renders it identically."""
    headers = {**ALICE, "Idempotency-Key": "same"}
    first = await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=headers)
    second = await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content


REJECTIONS: dict[str, tuple[Rejection, int, str, dict[str, Any]]] = {
    "too low": (
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, "too low", "BID_TOO_LOW", {"min_next_bid": "1050"}),
        409,
        "bid-too-low",
        {"min_next_bid": 1050},
    ),
    "not open": (
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, "not open", "AUCTION_NOT_OPEN"),
        409,
        "auction-not-open",
        {},
    ),
    "closed": (
        Rejection(grpc.StatusCode.FAILED_PRECONDITION, "closed", "AUCTION_CLOSED"),
        409,
        "auction-closed",
        {},
    ),
    "key reused": (
        Rejection(grpc.StatusCode.INVALID_ARGUMENT, "reused", "IDEMPOTENCY_KEY_REUSED"),
        422,
        "idempotency-key-reused",
        {},
    ),
    "invalid": (Rejection(grpc.StatusCode.INVALID_ARGUMENT, "amount too large"), 422, "validation-error", {}),
    "not found": (Rejection(grpc.StatusCode.NOT_FOUND, "no item"), 404, "item-not-found", {}),
    "exhausted": (Rejection(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down"), 429, "rate-limited", {}),
    "redis down": (Rejection(grpc.StatusCode.UNAVAILABLE, "redis at 10.1.2.3"), 503, "unavailable", {}),
    "bug": (Rejection(grpc.StatusCode.INTERNAL, "KeyError at line 12"), 502, "upstream-error", {}),
}


@pytest.mark.parametrize(("rejection", "status", "slug", "extra"), REJECTIONS.values(), ids=REJECTIONS.keys())
async def test_rejections_become_problems(
    client: httpx.AsyncClient,
    upstream: Upstream,
    rejection: Rejection,
    status: int,
    slug: str,
    extra: dict[str, Any],
) -> None:
    """Rich gRPC statuses from the bidder become the contract's problems, never leaking internals."""
    upstream.bidder.reject = rejection
    response = await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=ALICE)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == slug
    assert body["instance"] == "/items/lot-1/bid"
    for key, value in extra.items():
        assert body[key] == value
    assert "10.1.2.3" not in response.text
    assert "KeyError" not in response.text


async def test_slow_bidder_is_503_after_the_deadline(upstream: Upstream) -> None:
    """DEADLINE_EXCEEDED (the per-call timeout) is a retryable 503."""
    upstream.bidder.delay = 1.0 * TIME_UNIT
    settings = make_settings(bidder_target=upstream.target, grpc_timeout_seconds=0.1 * TIME_UNIT)
    async with running_app(settings) as (_, client):
        response = await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=ALICE)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        metrics = (await client.get("/metrics")).text
        assert 'edge_grpc_errors_total{code="DEADLINE_EXCEEDED",method="PlaceBids"} 1.0' in metrics


async def test_get_item(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/lot-1")
    assert response.status_code == 200
    assert response.json()["id"] == "lot-1"
    assert response.json()["current_price"] is None


async def test_get_unknown_item_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/lot-404")
    assert response.status_code == 404
    assert response.json()["type"] == "item-not-found"


@pytest.mark.parametrize(
    ("query", "status", "limit", "cursor"),
    [
        ("", item_pb2.ITEM_STATUS_UNSPECIFIED, 50, ""),
        ("?status=open&limit=10&cursor=abc", item_pb2.ITEM_STATUS_OPEN, 10, "abc"),
        ("?status=scheduled", item_pb2.ITEM_STATUS_SCHEDULED, 50, ""),
        ("?status=closed&limit=200", item_pb2.ITEM_STATUS_CLOSED, 200, ""),
    ],
)
async def test_list_items_maps_query_to_request(
    client: httpx.AsyncClient, upstream: Upstream, query: str, status: int, limit: int, cursor: str
) -> None:
    upstream.bidder.next_cursor = "next-page"
    response = await client.get(f"/items{query}")
    assert response.status_code == 200
    assert response.json()["next_cursor"] == "next-page"
    assert [item["id"] for item in response.json()["items"]] == ["lot-1"]
    (sent,) = upstream.bidder.calls
    assert isinstance(sent, bidder_pb2.ListItemsRequest)
    assert (sent.status, sent.limit, sent.cursor) == (status, limit, cursor)


async def test_create_item_is_201_with_location(client: httpx.AsyncClient, upstream: Upstream) -> None:
    body = {
        "title": "Clock",
        "currency": "EUR",
        "starting_price": 500,
        "min_increment": 25,
        "ends_at": "2099-01-01T10:00:00.5+01:00",
    }
    response = await client.post("/items", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/items/lot-new"
    assert response.json()["title"] == "Clock"
    assert response.json()["ends_at"] == "2099-01-01T09:00:00.500Z"
    (sent,) = upstream.bidder.calls
    assert isinstance(sent, bidder_pb2.CreateItemRequest)
    assert not sent.HasField("starts_at")
    assert (sent.starting_price, sent.min_increment, sent.description) == (500, 25, "")


async def test_bid_history(client: httpx.AsyncClient, upstream: Upstream) -> None:
    response = await client.get("/items/lot-1/bids?limit=2&before_seq=4")
    assert response.status_code == 200
    body = response.json()
    assert [bid["seq"] for bid in body["bids"]] == [3, 2]
    assert body["bids"][0] == {
        "bid_id": "bid-3",
        "seq": 3,
        "bidder": "bob",
        "amount": 1003,
        "placed_at": "2026-11-18T11:06:43.003Z",
    }
    assert body["next_before_seq"] == 2
    (sent,) = upstream.history.calls
    assert (sent.item_id, sent.limit, sent.before_seq) == ("lot-1", 2, 4)


async def test_bid_history_of_unknown_item_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/items/lot-9/bids")
    assert response.status_code == 404
    assert response.json()["type"] == "item-not-found"


async def test_unexpected_error_is_500_problem_without_traceback(
    client: httpx.AsyncClient, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug (here: an item status the contract does not know) is a logged 500 `internal-error`."""
    broken = upstream.bidder.items["lot-1"]
    broken.status = 99  # type: ignore[assignment]
    response = await client.get("/items/lot-1")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "internal-error"
    assert "Traceback" not in response.text
    assert "KeyError" not in response.text
    assert "KeyError" in capsys.readouterr().out  # logged with its traceback


async def test_buy_is_made_as_the_token_subject_with_its_key(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    """201 with a bid's shape; the buyer is the token's sub and the Idempotency-Key goes along."""
    response = await client.post("/items/lot-1/buy", headers={**ALICE, "Idempotency-Key": "buy-7"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == ["bid_id", "seq", "amount", "leading", "item"]
    assert (body["amount"], body["leading"], body["item"]["status"]) == (5000, True, "closed")
    assert body["item"]["buy_now_price"] == 5000
    call = upstream.bidder.calls[-1]
    assert isinstance(call, bidder_pb2.BuyNowRequest)
    assert (call.item_id, call.bidder, call.idempotency_key) == ("lot-1", "alice", "buy-7")


async def test_buy_now_unavailable_is_409_with_its_own_type(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.bidder.reject = Rejection(grpc.StatusCode.FAILED_PRECONDITION, reason="BUY_NOW_UNAVAILABLE")
    response = await client.post("/items/lot-1/buy", headers=ALICE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "buy-now-unavailable"
