"""Bidding wars over real HTTP, through the real edge and bidder processes, into real Redis."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.stack_fixtures import RestStack, rest_stack

__all__ = ["rest_stack"]

BIDDERS = 100
BIDS_PER_BIDDER = 21  # 2,100 bids in all


@dataclass
class Attempt:
    bidder: str
    amount: int
    started: float
    finished: float
    status: int
    body: dict[str, object]


async def fight(stack: RestStack, client: httpx.AsyncClient, item_id: str, name: str) -> list[Attempt]:
    """One bidder: bid, read the answer's minimum, top it by a random step, repeat."""
    headers = stack.auth(name)
    rng = random.Random(name)
    next_min = 100
    attempts = []
    for _ in range(BIDS_PER_BIDDER):
        amount = next_min + rng.randrange(0, 3) * 10
        started = time.perf_counter()
        response = await client.post(f"{stack.base_url}/items/{item_id}/bid", json={"amount": amount},
                                     headers=headers)  # fmt: skip
        finished = time.perf_counter()
        body = response.json()
        attempts.append(Attempt(name, amount, started, finished, response.status_code, body))
        if response.status_code == 201:
            item = body["item"]
            assert isinstance(item, dict)
            next_min = int(item["min_next_bid"])
        elif response.status_code == 409 and "min_next_bid" in body:
            next_min = int(str(body["min_next_bid"]))
    return attempts


async def test_bidding_war_on_one_item_loses_nothing(rest_stack: RestStack) -> None:
    """2,100 concurrent bids from 100 bidders: unique gap-free order, rising prices, exact final state."""
    limits = httpx.Limits(max_connections=BIDDERS, max_keepalive_connections=BIDDERS)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        item = await rest_stack.create_item(client)
        item_id = str(item["id"])
        per_bidder = await asyncio.gather(
            *(fight(rest_stack, client, item_id, f"b{i}") for i in range(BIDDERS))
        )
        final = (await client.get(f"{rest_stack.base_url}/items/{item_id}")).json()
    attempts = [a for group in per_bidder for a in group]
    assert len(attempts) >= 2000
    assert {a.status for a in attempts} <= {201, 409}, {a.status for a in attempts}

    accepted = sorted((a for a in attempts if a.status == 201), key=lambda a: int(str(a.body["seq"])))
    seqs = [int(str(a.body["seq"])) for a in accepted]
    assert len(set(seqs)) == len(seqs), "every 201 has its own seq"
    assert seqs == list(range(2, 2 + len(seqs))), "seqs are gap-free after the item's own seq 1"
    amounts = [a.amount for a in accepted]
    assert all(later >= earlier + 10 for earlier, later in itertools.pairwise(amounts))
    assert all(int(str(a.body["amount"])) == a.amount for a in accepted)

    # Real-time order: a bid that completed before another started has the smaller seq.
    latest_start = float("-inf")
    for a in accepted:
        assert a.finished >= latest_start, "a later seq finished before an earlier seq started"
        latest_start = max(latest_start, a.started)

    for a in attempts:
        if a.status == 409:
            assert a.body["type"] == "bid-too-low"
            assert int(str(a.body["min_next_bid"])) > a.amount

    top = accepted[-1]
    assert final["current_price"] == top.amount
    assert final["highest_bidder"] == top.bidder
    assert final["bid_count"] == len(accepted)
    assert final["seq"] == seqs[-1]
    assert final["min_next_bid"] == top.amount + 10


async def test_concurrent_retries_of_one_key_place_one_bid(rest_stack: RestStack) -> None:
    """20 concurrent sends of one Idempotency-Key: one bid, identical answers; another body is 422."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        item_id = str((await rest_stack.create_item(client))["id"])
        headers = {**rest_stack.auth("dana"), "Idempotency-Key": "retry-123"}
        url = f"{rest_stack.base_url}/items/{item_id}/bid"
        answers = await asyncio.gather(
            *(client.post(url, json={"amount": 150}, headers=headers) for _ in range(20))
        )
        assert {r.status_code for r in answers} == {201}
        assert len({r.content for r in answers}) == 1
        reused = await client.post(url, json={"amount": 160}, headers=headers)
        assert reused.status_code == 422
        assert reused.headers["content-type"].startswith("application/problem+json")
        assert reused.json()["type"] == "idempotency-key-reused"
        final = (await client.get(f"{rest_stack.base_url}/items/{item_id}")).json()
    assert (final["bid_count"], final["seq"], final["current_price"]) == (1, 2, 150)


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("negative", b'{"amount": -5}', "application/json"),
    ("zero", b'{"amount": 0}', "application/json"),
    ("fraction", b'{"amount": 150.5}', "application/json"),
    ("string", b'{"amount": "150"}', "application/json"),
    ("bool", b'{"amount": true}', "application/json"),
    ("null", b'{"amount": null}', "application/json"),
    ("huge", b'{"amount": 9007199254740993}', "application/json"),
    ("missing", b"{}", "application/json"),
    ("extra bidder", b'{"amount": 150, "bidder": "mallory"}', "application/json"),
    ("invalid json", b'{"amount": ', "application/json"),
    ("not an object", b"[150]", "application/json"),
    ("wrong type", b'{"amount": 150}', "text/plain"),
    ("ten MiB", b'{"amount": 150, "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}', "application/json"),
]


@pytest.mark.parametrize(("case", "body", "content_type"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_bid_input_is_a_problem_and_changes_nothing(
    rest_stack: RestStack, case: str, body: bytes, content_type: str
) -> None:
    """Each malformed bid gets a 4xx problem+json and leaves the item exactly as it was."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        item_id = str((await rest_stack.create_item(client))["id"])
        before = (await client.get(f"{rest_stack.base_url}/items/{item_id}")).json()
        headers = {**rest_stack.auth("erin"), "Content-Type": content_type}
        response = await client.post(
            f"{rest_stack.base_url}/items/{item_id}/bid", content=body, headers=headers
        )
        after = (await client.get(f"{rest_stack.base_url}/items/{item_id}")).json()
    assert 400 <= response.status_code < 500, (case, response.status_code)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == response.status_code
    assert "Traceback" not in response.text
    assert after == before


@pytest.mark.parametrize("item_id", ["does-not-exist", "x" * 65, "bad%20id", "..", "a.b"])
async def test_unknown_and_absurd_item_ids_are_404_problems(rest_stack: RestStack, item_id: str) -> None:
    """Unknown and impossible ids get 404 problem+json for reads and bids alike."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        got = await client.get(f"{rest_stack.base_url}/items/{item_id}")
        bid = await client.post(f"{rest_stack.base_url}/items/{item_id}/bid", json={"amount": 100},
                                headers=rest_stack.auth("finn"))  # fmt: skip
    for response in (got, bid):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_auction_window_is_enforced_over_rest(rest_stack: RestStack) -> None:
    """Before starts_at: 409 auction-not-open; after ends_at: 409 auction-closed."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        soon = await rest_stack.create_item(client, starts_at="2098-01-01T00:00:00.000Z")
        assert soon["status"] == "scheduled"
        early = await client.post(f"{rest_stack.base_url}/items/{soon['id']}/bid", json={"amount": 100},
                                  headers=rest_stack.auth("gail"))  # fmt: skip
        ends = time.time() + 0.5
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ends)) + f".{int(ends * 1000) % 1000:03d}Z"
        brief = await rest_stack.create_item(client, ends_at=stamp)
        await asyncio.sleep(ends - time.time() + 0.2)
        late = await client.post(f"{rest_stack.base_url}/items/{brief['id']}/bid", json={"amount": 100},
                                 headers=rest_stack.auth("gail"))  # fmt: skip
        closed = (await client.get(f"{rest_stack.base_url}/items/{brief['id']}")).json()
    assert (early.status_code, early.json()["type"]) == (409, "auction-not-open")
    assert (late.status_code, late.json()["type"]) == (409, "auction-closed")
    assert closed["status"] == "closed"
    assert closed["bid_count"] == 0


async def test_items_list_and_create_contract(rest_stack: RestStack) -> None:
    """POST /items answers 201 with Location; GET /items pages with next_cursor."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        created = await client.post(
            f"{rest_stack.base_url}/items",
            json={"title": "Desk", "currency": "EUR", "starting_price": 0, "min_increment": 1,
                  "ends_at": "2099-01-01T00:00:00Z"},
            headers=rest_stack.auth("root", "admin"),
        )  # fmt: skip
        assert created.status_code == 201
        item = created.json()
        assert created.headers["location"].endswith(f"/items/{item['id']}")
        assert item["current_price"] is None
        assert item["highest_bidder"] is None
        assert item["min_next_bid"] == 0
        assert item["seq"] == 1
        page = (await client.get(f"{rest_stack.base_url}/items", params={"limit": 1})).json()
        assert len(page["items"]) == 1
        assert page["next_cursor"]
        bidder_create = await client.post(
            f"{rest_stack.base_url}/items", json={}, headers=rest_stack.auth("b1")
        )
        assert bidder_create.status_code == 403
