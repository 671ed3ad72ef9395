"""A REST bidding war where half of 200 bidders bid with maximums, on the platform as `make up` runs it.

100 bidders bid plain amounts (the minimum plus a random step, up to a ceiling of their own); 100 send a
maximum (some alone, some with an amount) and let the platform bid for them. A viewer watches the item's
frames throughout. Checked from outside only, as a caller sees it: every accepted bid has its own seq and
the viewer saw a gap-free, rising price; the final leader and price are eBay's rule applied to every
accepted bid (the highest maximum leads, at the second-highest plus the ladder's increment there, capped at
its maximum, never below the leader's own named amount); no maximum reaches anyone else: no field named for
it in any answer or frame, and the three highest maximums (chosen so that no price can equal them) appear
in no answer and no frame at all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from auction_contract.bid_rules import increment_at
from tests.conftest import scaled
from tests.platform_fixtures import Platform, platform

__all__ = ["platform"]

PLAIN_BIDDERS = PROXY_BIDDERS = 100
STARTING_PRICE = 100
LADDER = ((0, 10), (10_000, 50), (500_000, 1_000))
# Far above every other maximum and ceiling, and not on any price path: a leak of one of these is
# unambiguous (the price ends at the second plus an increment, never at these values themselves).
DISTINCT_MAXIMUMS = (987_653, 876_541, 765_439)
PRIVATE_WORDS = ("max_amount", "leader_max", '"lm"')


@dataclass
class Seen:
    """Every answer body as its caller received it, and the accepted bids' tops."""

    bodies: list[tuple[str, str]] = field(default_factory=list)  # (recipient, raw body)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # {bidder, seq, amount, top}


async def _plain(client: httpx.AsyncClient, platform: Platform, item_id: str, name: str, seen: Seen) -> None:
    rng = random.Random(name)
    ceiling = rng.randrange(20_000, 120_000)
    next_min = STARTING_PRICE
    for _ in range(40):
        amount = next_min + rng.choice((0, 0, 10, 20, 500, 2_000))
        if amount > ceiling:
            return
        response = await client.post(
            f"{platform.edge_url}/items/{item_id}/bid", json={"amount": amount}, headers=platform.auth(name)
        )
        seen.bodies.append((name, response.text))
        body = response.json()
        if response.status_code == 201:
            seen.accepted.append({"bidder": name, "seq": body["seq"], "amount": amount, "top": amount})
            next_min = body["item"]["min_next_bid"]
        else:
            assert response.status_code == 409, response.text
            assert body["type"] == "bid-too-low", body
            next_min = body["min_next_bid"]


async def _proxy(
    client: httpx.AsyncClient,
    platform: Platform,
    item_id: str,
    name: str,
    maximum: int,
    seen: Seen,
    *,
    may_name: bool,
) -> None:
    """A maximum alone, or (sometimes) with the minimum as a named amount, read just before."""
    rng = random.Random(name)
    await asyncio.sleep(rng.uniform(0, 3))
    item = (await client.get(f"{platform.edge_url}/items/{item_id}")).json()
    named = may_name and rng.random() < 0.3 and item["min_next_bid"] <= maximum
    body: dict[str, int] = {"max_amount": maximum}
    if named:
        body["amount"] = item["min_next_bid"]
    response = await client.post(
        f"{platform.edge_url}/items/{item_id}/bid", json=body, headers=platform.auth(name)
    )
    seen.bodies.append((name, response.text))
    answer = response.json()
    if response.status_code == 201:
        seen.accepted.append(
            {"bidder": name, "seq": answer["seq"], "amount": body.get("amount"), "top": maximum}
        )
    else:
        assert response.status_code == 409, response.text
        assert answer["type"] == "bid-too-low", answer


def _messages(frame: str) -> list[dict[str, Any]]:
    """A frame's messages: one, or a batch's events (the fan-out batches events that pile up)."""
    decoded: dict[str, Any] = json.loads(frame)
    events: list[dict[str, Any]] = decoded["events"] if decoded["type"] == "batch" else [decoded]
    return events


async def _watch(url: str, frames: list[str], arrived: asyncio.Event) -> None:
    async with websockets.connect(url) as socket:
        async for frame in socket:
            assert isinstance(frame, str)
            frames.append(frame)
            arrived.set()


async def _seen_up_to(frames: list[str], arrived: asyncio.Event, seq: int) -> None:
    """Until the viewer has a frame with `seq` (or later)."""
    while True:
        arrived.clear()
        if frames and _messages(frames[-1])[-1].get("seq", 0) >= seq:
            return
        await arrived.wait()


def _rule(accepted: list[dict[str, Any]]) -> tuple[str, int]:
    """eBay's rule over every accepted bid: (leader, price). Tops are distinct by construction, except
    plain amounts, where the earlier (lower seq) leads."""
    by_bidder: dict[str, dict[str, Any]] = {}
    for bid in sorted(accepted, key=lambda b: b["seq"]):
        known = by_bidder.get(bid["bidder"])
        if known is None or bid["top"] > known["top"]:
            by_bidder[bid["bidder"]] = {"top": bid["top"], "seq": bid["seq"], "named": bid["amount"]}
        elif bid["amount"] is not None:
            known["named"] = max(known["named"] or 0, bid["amount"])
    ranked = sorted(by_bidder.items(), key=lambda kv: (-kv[1]["top"], kv[1]["seq"]))
    leader, best = ranked[0]
    floor = max(best["named"] or 0, STARTING_PRICE)
    if len(ranked) == 1:
        return leader, floor
    second = ranked[1][1]["top"]
    return leader, max(floor, min(best["top"], second + increment_at(LADDER, second)))


async def test_half_the_bidders_on_maximums_the_rule_holds_and_no_maximum_leaks(platform: Platform) -> None:
    rng = random.Random(16)
    maximums = [*DISTINCT_MAXIMUMS, *rng.sample(range(2_000, 95_000, 7), PROXY_BIDDERS - 3)]
    body = {
        "title": "Long-case clock", "currency": "USD", "starting_price": STARTING_PRICE, "min_increment": 10,
        "increments": [{"from": start, "increment": step} for start, step in LADDER],
        "ends_at": "2099-01-01T00:00:00.000Z",
    }  # fmt: skip
    seen, frames = Seen(), list[str]()
    bidders = PLAIN_BIDDERS + PROXY_BIDDERS
    limits = httpx.Limits(max_connections=bidders, max_keepalive_connections=bidders)
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(60), limits=limits) as client:
        created = await client.post(
            f"{platform.edge_url}/items", json=body, headers=platform.auth("root", "admin")
        )
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        arrived = asyncio.Event()
        url = f"{platform.fanout_url}/ws/items/{item_id}"
        viewer = asyncio.create_task(_watch(url, frames, arrived))
        await asyncio.wait_for(arrived.wait(), timeout=scaled(10))  # the viewer's snapshot first
        # The war, then the three highest maximums (sent first, they would end it at once), then the
        # plain bidders try again: the maximums must defend.
        distinct = len(DISTINCT_MAXIMUMS)
        phases = [
            [
                *(_plain(client, platform, item_id, f"plain{n}", seen) for n in range(PLAIN_BIDDERS)),
                *(
                    _proxy(client, platform, item_id, f"proxy{n}", maximum, seen, may_name=True)
                    for n, maximum in enumerate(maximums)
                    if n >= distinct
                ),
            ],
            [
                _proxy(client, platform, item_id, f"proxy{n}", maximums[n], seen, may_name=False)
                for n in range(distinct)
            ],
            [_plain(client, platform, item_id, f"plain{n}", seen) for n in range(0, PLAIN_BIDDERS, 10)],
        ]
        for phase in phases:
            await asyncio.wait_for(asyncio.gather(*phase), timeout=scaled(120))
        final_answer = await client.get(f"{platform.edge_url}/items/{item_id}")
        final = final_answer.json()
        try:
            await asyncio.wait_for(_seen_up_to(frames, arrived, final["seq"]), timeout=scaled(30))
        finally:
            viewer.cancel()
    seen.bodies.append(("anyone", final_answer.text))
    owner_of = {maximum: f"proxy{n}" for n, maximum in enumerate(maximums)}

    # Every accepted bid has its own seq.
    seqs = [bid["seq"] for bid in seen.accepted]
    assert len(seqs) > 50, len(seqs)
    assert len(set(seqs)) == len(seqs)

    # The viewer: a snapshot, then every event once, in seq order, at prices that never fall.
    decoded = [message for frame in frames for message in _messages(frame)]
    assert decoded[0]["type"] == "snapshot"
    events = decoded[1:]
    assert [e["seq"] for e in events] == list(range(decoded[0]["seq"] + 1, final["seq"] + 1))
    assert {e["type"] for e in events} == {"bid"}
    for earlier, later in itertools.pairwise(events):
        assert later["amount"] >= earlier["amount"], (earlier, later)
        if later["amount"] == earlier["amount"]:  # an equal maximum defended: the earlier leads
            assert later["proxy"] is True, (earlier, later)
    assert {bid["seq"] for bid in seen.accepted} <= {e["seq"] for e in events}
    assert any(e.get("proxy") for e in events), "the maximums must have bid for their owners"

    # The rule applied to every accepted bid gives the final leader and price.
    leader, price = _rule(seen.accepted)
    assert (final["highest_bidder"], final["current_price"]) == (leader, price)
    assert (events[-1]["bidder"], events[-1]["amount"]) == (leader, price)
    assert final["bid_count"] == len(events)

    # No maximum reaches anyone else.
    texts = [("viewer", frame) for frame in frames] + seen.bodies
    for recipient, text in texts:
        if recipient not in owner_of.values():  # an owner's own answer may speak of their maximum
            for word in PRIVATE_WORDS:
                assert word not in text, (recipient, text)
        for maximum in DISTINCT_MAXIMUMS:
            if recipient != owner_of[maximum]:
                assert str(maximum) not in text, (recipient, maximum, text)
