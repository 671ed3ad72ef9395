"""A poison outbox entry is quarantined once (dead letter, metric, failing /readyz), not retried forever.

The attack that found it: an item starting in year 481 was accepted, and its bid events carried a time
the relay could not parse; the relay logged it, left the entry pending, re-claimed it every few
seconds, forever, with /readyz green. The bidder now refuses such items; this holds the relay to
quarantining anything of the kind that still reaches the outbox (a bug, a foreign writer).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from auction_contract.redis_layout import EVENT_FIELD, dead_letter_key, outbox_key
from tests.archive_fixtures import PARTITIONS, ArchiveStack, archive_stack
from tests.conftest import scaled

__all__ = ["archive_stack"]

YEAR_481_BID = orjson.dumps(
    {
        "type": "bid", "item_id": "poison-481", "seq": 2, "bid_id": "poison-481.2", "bidder": "ann",
        "amount": 100, "currency": "USD", "placed_at": "481-01-08T10:38:29.000Z", "current_price": 100,
        "min_next_bid": 110,
    }
)  # fmt: skip
NOT_JSON = b"{this is not an event"


async def _metric(client: httpx.AsyncClient, url: str, name: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def _eventually(check: object, within: float) -> None:
    deadline = time.monotonic() + scaled(within)
    while True:
        if await check():  # type: ignore[operator]
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_poison_entries_go_to_the_dead_letters_once_and_readiness_says_so(
    archive_stack: ArchiveStack,
) -> None:
    redis = Redis.from_url(archive_stack.redis.url)
    archiver = archive_stack.archiver()
    await archiver.start()
    relay = archive_stack.relay()
    await relay.start()
    assert relay.endpoint is not None
    url = relay.endpoint
    try:
        await redis.xadd(outbox_key(1), {EVENT_FIELD: YEAR_481_BID})
        await redis.xadd(outbox_key(2), {EVENT_FIELD: NOT_JSON})
        # A good item after the poison still goes through.
        [good] = await archive_stack.create_items(1)
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:

            async def good_item_archived() -> bool:
                return good in await archive_stack.items_archived([good])

            await _eventually(good_item_archived, within=30)

            async def quarantined() -> bool:
                dead = [await redis.xlen(dead_letter_key(p)) for p in range(PARTITIONS)]
                return sum(dead) == 2

            await _eventually(quarantined, within=20)
            letters: Any = await redis.xrange(dead_letter_key(1))
            fields = letters[0][1]
            assert fields[EVENT_FIELD.encode()] == YEAR_481_BID
            assert b"481-01-08" in fields[b"reason"]
            for p in range(PARTITIONS):
                assert await redis.xlen(outbox_key(p)) == 0
                assert (await redis.xpending(outbox_key(p), "relay"))["pending"] == 0

            async def readiness_says_so() -> bool:
                answer = await client.get(f"{url}/readyz")
                return answer.status_code == 503 and "set aside" in answer.text

            await _eventually(readiness_says_so, within=10)
            assert await _metric(client, url, "relay_dead_letter_entries") == 2
            # Several claim intervals later the poison was handled once, not claimed over and over.
            await asyncio.sleep(scaled(3))
            assert await _metric(client, url, "relay_bad_entries_total") == 2
            assert await _metric(client, url, "relay_entries_claimed_total") == 0
            # The operator inspects and deletes the dead letters: readiness comes back.
            await redis.delete(*[dead_letter_key(p) for p in range(PARTITIONS)])

            async def ready_again() -> bool:
                return (await client.get(f"{url}/readyz")).status_code == 200

            await _eventually(ready_again, within=10)
    finally:
        await redis.aclose()
        await relay.stop()
        await archiver.stop()
