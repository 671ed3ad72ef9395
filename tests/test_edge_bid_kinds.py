"""Bid kinds over REST, through the real edge and bidder processes (both write strategies), into Redis.

Proxy bids, the increment ladder and buy-now as CONTRACT.md ("Bid kinds") states them: each success,
each refusal (with nothing changed after it), the buy-now race, and no maximum in any answer: the
maximums used here are distinctive numbers, looked for in every body that anyone gets back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.stack_fixtures import RestStack, rest_stack

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["rest_stack"]

# Distinctive maximums: no price, seq, id or time of these tests contains them by chance.
ANN_MAX, BOB_MAX, CARL_MAX = 97_531, 86_421, 75_319


class Session:
    """One stack, one HTTP client, and every body answered, to look for maximums in afterwards."""

    def __init__(self, stack: RestStack, client: httpx.AsyncClient) -> None:
        self.stack = stack
        self.client = client
        self.seen: list[str] = []

    async def item(self, **overrides: object) -> dict[str, Any]:
        return await self.stack.create_item(self.client, **overrides)

    async def get(self, item_id: str, role: str | None = None) -> dict[str, Any]:
        headers = self.stack.auth("root", role) if role else {}
        response = await self.client.get(f"{self.stack.base_url}/items/{item_id}", headers=headers)
        assert response.status_code == 200, response.text
        self.seen.append(response.text)
        body: dict[str, Any] = response.json()
        return body

    async def bid(self, item_id: str, who: str, key: str | None = None, **terms: int) -> httpx.Response:
        return await self.send_bid(item_id, who, terms, key)

    async def send_bid(
        self, item_id: str, who: str, body: dict[str, int], key: str | None = None
    ) -> httpx.Response:
        headers = self.stack.auth(who) | ({"Idempotency-Key": key} if key else {})
        url = f"{self.stack.base_url}/items/{item_id}/bid"
        response = await self.client.post(url, json=body, headers=headers)
        self.seen.append(response.text)
        return response

    async def buy(self, item_id: str, who: str, key: str | None = None) -> httpx.Response:
        headers = self.stack.auth(who) | ({"Idempotency-Key": key} if key else {})
        response = await self.client.post(f"{self.stack.base_url}/items/{item_id}/buy", headers=headers)
        self.seen.append(response.text)
        return response

    def assert_no_maximum_shown(self, *maximums: int) -> None:
        for text in self.seen:
            for maximum in maximums:
                assert str(maximum) not in text, text


@pytest.fixture
async def session(rest_stack: RestStack) -> AsyncIterator[Session]:
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        yield Session(rest_stack, client)


def problem(response: httpx.Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == problem_type, body
    return body


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["bid_id", "seq", "amount", "leading", "item"]
    return body


async def test_maximums_resolve_as_ebay_does_and_are_never_shown(session: Session) -> None:
    """A lone maximum leads at the starting price; a lower one moves the price to it plus one increment
    and is beaten at once (201, not leading); a higher one takes the lead at the old maximum plus one
    increment; nobody's answer, the item (also as an admin) or an error shows a maximum."""
    item = await session.item()
    item_id = item["id"]
    ann = accepted(await session.bid(item_id, "ann", max_amount=ANN_MAX))
    assert (ann["amount"], ann["leading"], ann["item"]["current_price"]) == (100, True, 100)
    assert ann["item"]["min_next_bid"] == 110
    bob = accepted(await session.bid(item_id, "bob", max_amount=BOB_MAX))
    assert bob["leading"] is False
    assert (bob["item"]["current_price"], bob["item"]["highest_bidder"]) == (BOB_MAX + 10, "ann")
    low = problem(await session.bid(item_id, "carl", amount=BOB_MAX), 409, "bid-too-low")
    assert low["min_next_bid"] == BOB_MAX + 20
    carl = accepted(await session.bid(item_id, "carl", amount=BOB_MAX + 20, max_amount=CARL_MAX * 2))
    assert carl["leading"] is True
    assert (carl["item"]["current_price"], carl["item"]["highest_bidder"]) == (ANN_MAX + 10, "carl")
    for role in (None, "admin"):
        now = await session.get(item_id, role)
        assert (now["current_price"], now["highest_bidder"], now["seq"]) == (ANN_MAX + 10, "carl", 4)
    session.assert_no_maximum_shown(ANN_MAX * 1, CARL_MAX * 2)
    assert all("max_amount" not in text for text in session.seen)


async def test_amount_with_a_maximum_and_the_leaders_raise(session: Session) -> None:
    """`amount` and `max_amount` together bid the amount now; the leader raising their own maximum gets
    201, leading, and the price does not move (no event)."""
    item_id = (await session.item())["id"]
    first = accepted(await session.bid(item_id, "ann", amount=150, max_amount=ANN_MAX))
    assert (first["amount"], first["item"]["current_price"], first["seq"]) == (150, 150, 2)
    raised = accepted(await session.bid(item_id, "ann", max_amount=ANN_MAX + 1000))
    assert raised["leading"] is True
    assert (raised["item"]["current_price"], raised["item"]["seq"]) == (150, 2)
    beaten = accepted(await session.bid(item_id, "bob", amount=300))
    assert beaten["leading"] is False
    assert (beaten["item"]["current_price"], beaten["item"]["highest_bidder"]) == (310, "ann")
    session.assert_no_maximum_shown(ANN_MAX, ANN_MAX + 1000)


async def test_a_keyed_maximum_replays_its_answer_and_refuses_another_maximum(session: Session) -> None:
    item_id = (await session.item())["id"]
    first = await session.bid(item_id, "ann", key="max-1", max_amount=ANN_MAX)
    again = await session.bid(item_id, "ann", key="max-1", max_amount=ANN_MAX)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.content == again.content
    problem(await session.bid(item_id, "ann", key="max-1", max_amount=BOB_MAX), 422, "idempotency-key-reused")
    assert (await session.get(item_id))["seq"] == 2
    session.assert_no_maximum_shown(ANN_MAX, BOB_MAX)


async def test_the_ladder_is_shown_and_sets_min_next_bid(session: Session) -> None:
    ladder = [{"from": 0, "increment": 10}, {"from": 200, "increment": 50}, {"from": 1000, "increment": 100}]
    item = await session.item(increments=ladder, min_increment=10)
    assert (item["increments"], item["min_increment"], item["min_next_bid"]) == (ladder, 10, 100)
    assert "buy_now_price" not in item
    after = accepted(await session.bid(item["id"], "ann", amount=200))["item"]
    assert after["min_next_bid"] == 250
    problem(await session.bid(item["id"], "bob", amount=240), 409, "bid-too-low")
    proxy = accepted(await session.bid(item["id"], "bob", max_amount=ANN_MAX))["item"]
    assert (proxy["current_price"], proxy["min_next_bid"]) == (250, 300)
    shown = await session.get(item["id"])
    assert shown["increments"] == ladder
    assert "increments" not in (await session.item())  # an item without a ladder has no member


async def count_items(session: Session) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await session.client.get(f"{session.stack.base_url}/items", params=params)).json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


@pytest.mark.parametrize(
    "change",
    [
        {"increments": [{"from": 10, "increment": 10}]},
        {"increments": [{"from": 0, "increment": 10}, {"from": 0, "increment": 20}]},
        {"increments": [{"from": 0, "increment": 20}]},
        {"buy_now_price": 100},
        {"reserve_price": 900, "buy_now_price": 800},
    ],
    ids=["ladder-start", "ladder-rise", "ladder-min-increment", "buy-now-start", "buy-now-reserve"],
)
async def test_bad_bid_kinds_at_creation_are_422_and_create_nothing(
    session: Session, change: dict[str, object]
) -> None:
    before = await count_items(session)
    body = {"title": "Lamp", "currency": "USD", "starting_price": 100, "min_increment": 10,
            "ends_at": "2099-01-01T00:00:00Z", **change}  # fmt: skip
    url = f"{session.stack.base_url}/items"
    response = await session.client.post(url, json=body, headers=session.stack.auth("root", "admin"))
    assert "field error in the request: body." in problem(response, 422, "validation-error")["detail"]
    assert await count_items(session) == before


@pytest.mark.parametrize(
    ("terms", "status", "problem_type"),
    [
        ({"amount": 500, "max_amount": 499}, 422, "validation-error"),
        ({}, 422, "validation-error"),
        ({"max_amount": 0}, 422, "validation-error"),
        ({"max_amount": 99}, 409, "bid-too-low"),
        ({"amount": 99, "max_amount": ANN_MAX}, 409, "bid-too-low"),
    ],
    ids=["max-below-amount", "neither", "zero-max", "max-too-low", "amount-too-low"],
)
async def test_bad_bids_are_refused_and_change_nothing(
    session: Session, terms: dict[str, int], status: int, problem_type: str
) -> None:
    item_id = (await session.item())["id"]
    refused = problem(await session.send_bid(item_id, "ann", terms), status, problem_type)
    if status == 409:
        assert refused["min_next_bid"] == 100
    after = await session.get(item_id)
    assert (after["seq"], after["bid_count"], after["current_price"]) == (1, 0, None)
    session.assert_no_maximum_shown(ANN_MAX, 499)


async def test_buy_now_sells_closes_and_is_shown(session: Session) -> None:
    """201 with a bid's shape, sold at the buy-now price and closed; the price stays on the item."""
    item = await session.item(buy_now_price=5000, reserve_price=4000)
    assert item["buy_now_price"] == 5000
    assert "buy_now_price" in await session.get(item["id"])
    bought = accepted(await session.buy(item["id"], "ann"))
    assert (bought["amount"], bought["leading"], bought["seq"]) == (5000, True, 2)
    sold = bought["item"]
    assert (sold["status"], sold["current_price"], sold["highest_bidder"]) == ("closed", 5000, "ann")
    assert (sold["result"]["outcome"], sold["result"]["winner"], sold["result"]["final_price"]) == (
        "sold", "ann", 5000,
    )  # fmt: skip
    assert sold["buy_now_price"] == 5000
    assert "reserve_price" not in sold
    problem(await session.bid(item["id"], "bob", amount=9000), 409, "auction-closed")
    problem(await session.buy(item["id"], "bob"), 409, "auction-closed")
    assert (await session.get(item["id"]))["seq"] == 3


async def test_of_20_concurrent_buyers_exactly_one_wins(session: Session) -> None:
    item_id = (await session.item(buy_now_price=7000))["id"]
    answers = await asyncio.gather(*(session.buy(item_id, f"buyer-{n}") for n in range(20)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 19
    assert {answer.json()["type"] for answer in answers if answer.status_code == 409} == {"auction-closed"}
    winner = next(answer.json() for answer in answers if answer.status_code == 201)
    final = await session.get(item_id)
    assert (final["status"], final["seq"], final["bid_count"]) == ("closed", 3, 1)
    assert final["result"]["winner"] == winner["item"]["highest_bidder"]


async def test_buy_now_after_a_bid_or_without_a_price_is_unavailable(session: Session) -> None:
    offered = (await session.item(buy_now_price=5000))["id"]
    plain = (await session.item())["id"]
    accepted(await session.bid(offered, "ann", max_amount=ANN_MAX))
    for item_id in (offered, plain):
        refused = problem(await session.buy(item_id, "bob"), 409, "buy-now-unavailable")
        assert "buy-now" in refused["detail"]
    assert ((await session.get(offered))["seq"], (await session.get(plain))["seq"]) == (2, 1)
    session.assert_no_maximum_shown(ANN_MAX)


async def test_buy_refusals_before_the_sale(session: Session) -> None:
    """Scheduled: 409 auction-not-open; unknown: 404; no token: 401; nothing changes."""
    later = await session.item(buy_now_price=5000, starts_at="2098-01-01T00:00:00Z")
    problem(await session.buy(later["id"], "ann"), 409, "auction-not-open")
    problem(await session.buy("no-such-item", "ann"), 404, "item-not-found")
    response = await session.client.post(f"{session.stack.base_url}/items/{later['id']}/buy")
    problem(response, 401, "unauthorized")
    assert (await session.get(later["id"]))["seq"] == 1


async def test_a_retried_buy_with_its_key_hears_that_it_won(session: Session) -> None:
    item_id = (await session.item(buy_now_price=800))["id"]
    first = await session.buy(item_id, "ann", key="buy-1")
    again = await session.buy(item_id, "ann", key="buy-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.content == again.content
    problem(await session.buy(item_id, "bob", key="buy-1"), 409, "auction-closed")
