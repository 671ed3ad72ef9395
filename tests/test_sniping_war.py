"""A sniping war on the platform as `make up` runs it: 200 bidders through REST in an item's last seconds.

The item has a 2 s soft close window, a 2 s extension and a cap 10 s after its first end. Checked: every
accepted bid was placed before the end in force when it was placed; the final end is
`min(last extending bid's placed_at + extension, cap)`; nothing is accepted at or after it; exactly one
`closed` event, the last, whose winner and price are the highest accepted bid's; a viewer watching
throughout saw every bid, extension and the close in seq order; the archive holds the same bids and one
result row.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from auction.live import BidPlaced, Closed, Extended, LiveEvent, Snapshot, watch_item
from tests.conftest import scaled
from tests.platform_fixtures import Platform, platform

__all__ = ["platform"]

BIDDERS = 200
WINDOW_S, EXTENSION_S, CAP_AFTER_S = 2, 2, 10
LEAD_S, WAR_S = 4.0, 3.0  # the item ends LEAD_S after creation; bidding starts WAR_S before that


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _bidder(
    client: httpx.AsyncClient, platform: Platform, item_id: str, name: str, accepted: list[dict[str, Any]]
) -> int:
    """Bid the minimum as fast as the platform answers until the auction is closed; refusals seen."""
    headers = platform.auth(name)
    amount, refusals = 100, 0
    while True:
        response = await client.post(
            f"{platform.edge_url}/items/{item_id}/bid", json={"amount": amount}, headers=headers
        )
        body = response.json()
        if response.status_code == 201:
            accepted.append({"seq": body["seq"], "bidder": name, "amount": body["amount"]})
            amount = body["item"]["min_next_bid"]
        elif response.status_code == 409 and body["type"] == "bid-too-low":
            refusals += 1
            amount = body["min_next_bid"]
        elif response.status_code == 409 and body["type"] == "auction-closed":
            return refusals
        elif response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("retry-after", "0.1")))
        else:
            raise AssertionError(f"unexpected answer {response.status_code}: {body}")


async def _watch(platform: Platform, item_id: str, seen: list[LiveEvent]) -> None:
    async for event in watch_item(platform.fanout_url, item_id):
        seen.append(event)


async def test_a_sniping_war_extends_closes_once_and_every_record_agrees(platform: Platform) -> None:
    ends_at = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    cap = ends_at + timedelta(seconds=CAP_AFTER_S)
    rule = {"window_seconds": WINDOW_S, "extension_seconds": EXTENSION_S, "max_ends_at": cap.isoformat()}
    body = {
        "title": "Contested lot", "currency": "USD", "starting_price": 100, "min_increment": 10,
        "ends_at": ends_at.isoformat(), "soft_close": rule,
    }  # fmt: skip
    limits = httpx.Limits(max_connections=BIDDERS, max_keepalive_connections=BIDDERS)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        created = await client.post(
            f"{platform.edge_url}/items", json=body, headers=platform.auth("root", "admin")
        )
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        first_end_ms = _ms(_parse(created.json()["ends_at"]))
        seen: list[LiveEvent] = []
        viewer = asyncio.create_task(_watch(platform, item_id, seen))
        await asyncio.sleep(max(0.0, LEAD_S - WAR_S - 0.5))
        accepted: list[dict[str, Any]] = []
        bidders = [_bidder(client, platform, item_id, f"sniper{n}", accepted) for n in range(BIDDERS)]
        await asyncio.wait_for(asyncio.gather(*bidders), timeout=scaled(60))
        await asyncio.wait_for(viewer, timeout=scaled(30))
        final = (await client.get(f"{platform.edge_url}/items/{item_id}")).json()

    # The viewer's stream: snapshot, then every event once in seq order, the close last.
    assert isinstance(seen[0], Snapshot)
    events = seen[1:]
    seqs = [e.seq for e in events]  # type: ignore[union-attr]
    assert seqs == list(range(seen[0].seq + 1, seen[0].seq + 1 + len(events)))
    closes = [e for e in events if isinstance(e, Closed)]
    assert len(closes) == 1
    assert events[-1] is closes[0]
    bids = [e for e in events if isinstance(e, BidPlaced)]
    extensions = [e for e in events if isinstance(e, Extended)]
    assert len(bids) == len(accepted) > 10
    assert {(b.seq, b.bidder, b.amount) for b in bids} == {
        (a["seq"], a["bidder"], a["amount"]) for a in accepted
    }
    assert extensions, "late bids within the window must have extended the auction"

    # Every accepted bid was placed before the end in force at that moment; each extension followed its bid.
    end_in_force = first_end_ms
    previous: LiveEvent | None = seen[0]
    for event in events:
        if isinstance(event, BidPlaced):
            assert _ms(event.placed_at) < end_in_force, (event, end_in_force)
        elif isinstance(event, Extended):
            assert isinstance(previous, BidPlaced)
            assert _ms(event.previous_ends_at) == end_in_force
            expected = min(_ms(previous.placed_at) + EXTENSION_S * 1000, _ms(cap))
            assert _ms(event.ends_at) == expected
            end_in_force = _ms(event.ends_at)
        previous = event
    assert _ms(_parse(final["ends_at"])) == end_in_force <= _ms(cap)
    assert all(_ms(b.placed_at) < end_in_force for b in bids)

    # One result: the highest accepted bid wins at its amount.
    top = max(bids, key=lambda b: b.amount)
    close = closes[0]
    assert (close.outcome, close.winner, close.final_price, close.bid_count) == (
        "sold",
        top.bidder,
        top.amount,
        len(bids),
    )
    assert final["result"]["winner"] == top.bidder
    assert final["result"]["final_price"] == top.amount
    assert final["status"] == "closed"

    # The archive: the same bids, and one result row.
    deadline = time.monotonic() + scaled(60)
    archived: list[dict[str, Any]] = []
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        while time.monotonic() < deadline:
            archived, before = [], None
            while True:
                query = {"limit": 200} | ({"before_seq": before} if before else {})
                page = (await client.get(f"{platform.edge_url}/items/{item_id}/bids", params=query)).json()
                archived += page.get("bids", [])
                before = page.get("next_before_seq")
                if not before:
                    break
            if len(archived) >= len(bids):
                break
            await asyncio.sleep(0.3)
    assert sorted((b["seq"], b["bidder"], b["amount"]) for b in archived) == sorted(
        (b.seq, b.bidder, b.amount) for b in bids
    )
    conn = await asyncpg.connect(platform.postgres_dsn)
    try:
        rows = await conn.fetch(
            "SELECT outcome, winner, final_price, seq FROM auction_results WHERE item_id = $1", item_id
        )
        assert [tuple(r) for r in rows] == [("sold", top.bidder, top.amount, close.seq)]
    finally:
        await conn.close()


async def test_the_reserve_is_hidden_from_all_but_admins_and_closed_items_list_as_closed(
    platform: Platform,
) -> None:
    ends_at = datetime.now(UTC) + timedelta(seconds=1)
    body = {
        "title": "Reserved lot", "currency": "USD", "starting_price": 100, "min_increment": 10,
        "ends_at": ends_at.isoformat(), "reserve_price": 1000,
    }  # fmt: skip
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        admin = platform.auth("root", "admin")
        created = await client.post(f"{platform.edge_url}/items", json=body, headers=admin)
        assert created.status_code == 201, created.text
        item_id = created.json()["id"]
        url = f"{platform.edge_url}/items/{item_id}"
        assert created.json()["reserve_price"] == 1000
        for headers in ({}, platform.auth("bob"), {"Authorization": "Bearer not-a-token"}):
            seen = (await client.get(url, headers=headers)).json()
            assert "reserve_price" not in seen
            assert seen["reserve_met"] is False
        assert (await client.get(url, headers=admin)).json()["reserve_price"] == 1000
        placed = await client.post(f"{url}/bid", json={"amount": 500}, headers=platform.auth("bob"))
        assert placed.status_code == 201
        assert "reserve_price" not in placed.json()["item"]
        refused = {**body, "reserve_price": 50}
        problem = await client.post(f"{platform.edge_url}/items", json=refused, headers=admin)
        assert problem.status_code == 422
        deadline = time.monotonic() + scaled(15)
        while (item := (await client.get(url)).json())["result"] is None and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the API
            await asyncio.sleep(0.2)
        assert item["result"]["outcome"] == "no_sale"  # 500 is below the reserve of 1000
        assert item["status"] == "closed"
        closed = (
            await client.get(f"{platform.edge_url}/items", params={"status": "closed", "limit": 200})
        ).json()
        assert item_id in {i["id"] for i in closed["items"]}
        assert all(i["status"] == "closed" for i in closed["items"])
