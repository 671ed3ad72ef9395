"""The platform's own records of the chaos war's items, read where each lives.

The item history is Redis's per-item event stream (what the bidder wrote in the same atomic step as the
bid, and what the fan-out serves viewers from); the archive is PostgreSQL's `bids` and `auction_results`;
the item state is the edge's `GET /items/{id}`. Events of every kind are reduced to one tuple shape,
`Event`, the same a viewer's log uses, so the checks compare like with like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import asyncpg
import httpx
import redis.asyncio as redis_asyncio

from auction_contract.redis_layout import EVENT_FIELD, PREFIX


class Event(NamedTuple):
    """(seq, kind, bid id or "", bidder or winner or "", amount or final price or -1)."""

    seq: int
    kind: str
    bid_id: str
    who: str
    amount: int


class Result(NamedTuple):
    seq: int
    outcome: str
    winner: str
    final_price: int


@dataclass
class Records:
    history: dict[str, list[Event]]  # per item, in stream order
    archived_bids: dict[str, list[Event]]  # per item, by seq
    results: dict[str, list[Result]]  # per item: its result rows (one once closed)
    states: dict[str, dict[str, Any]]  # per item: the edge's answer (empty when it had none)


def event_of(data: dict[str, Any]) -> Event:
    kind = str(data["type"])
    if kind == "bid":
        return Event(int(data["seq"]), kind, str(data["bid_id"]), str(data["bidder"]), int(data["amount"]))
    if kind == "closed":
        price = data.get("final_price")
        return Event(
            int(data["seq"]), kind, "", str(data.get("winner") or ""), -1 if price is None else int(price)
        )
    return Event(int(data["seq"]), kind, "", "", -1)


async def read_history(redis_url: str, item_ids: Iterable[str]) -> dict[str, list[Event]]:
    """Each item's whole event stream (its key found by pattern: the partition is in its hash tag)."""
    wanted = set(item_ids)
    history: dict[str, list[Event]] = {item_id: [] for item_id in wanted}
    async with redis_asyncio.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True) as client:
        async for key in client.scan_iter(match=f"{PREFIX}:*:events:*", count=1000):
            item_id = str(key).rsplit(":events:", 1)[1]
            if item_id in wanted:
                entries = cast("list[tuple[str, dict[str, str]]]", await client.xrange(key))
                history[item_id] = [event_of(json.loads(fields[EVENT_FIELD])) for _, fields in entries]
    return history


async def read_archive(
    dsn: str, item_ids: Iterable[str]
) -> tuple[dict[str, list[Event]], dict[str, list[Result]]]:
    """The archived bids and results of the items."""
    ids = sorted(set(item_ids))
    bids: dict[str, list[Event]] = {item_id: [] for item_id in ids}
    results: dict[str, list[Result]] = {item_id: [] for item_id in ids}
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for row in await conn.fetch(
            "SELECT item_id, seq, bid_id, bidder, amount FROM bids WHERE item_id = ANY($1) ORDER BY seq",
            ids,
        ):
            bids[row["item_id"]].append(Event(row["seq"], "bid", row["bid_id"], row["bidder"], row["amount"]))
        for row in await conn.fetch(
            "SELECT item_id, seq, outcome, winner, final_price FROM auction_results WHERE item_id = ANY($1)",
            ids,
        ):
            price = -1 if row["final_price"] is None else int(row["final_price"])
            results[row["item_id"]].append(Result(row["seq"], row["outcome"], row["winner"] or "", price))
    finally:
        await conn.close()
    return bids, results


async def read_states(edge_url: str, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`GET /items/{id}` of each item (an empty dict when the edge did not answer 200)."""
    async with httpx.AsyncClient(base_url=edge_url, trust_env=False, timeout=10.0) as client:

        async def one(item_id: str) -> dict[str, Any]:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"/items/{item_id}")
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
            return {}

        ids = sorted(set(item_ids))
        return dict(zip(ids, await asyncio.gather(*(one(item_id) for item_id in ids)), strict=True))


async def read_all(
    redis_url: str, dsn: str, edge_url: str, item_ids: Iterable[str], *, states: bool
) -> Records:
    """The archive first: what it holds then the history holds too (the outbox entry of an event is
    written in the same atomic step as its history entry), so a bid placed meanwhile is not taken for
    one archived but missing from the history."""
    ids = list(item_ids)
    bids, results = await read_archive(dsn, ids)
    history = await read_history(redis_url, ids)
    return Records(history, bids, results, await read_states(edge_url, ids) if states else {})
