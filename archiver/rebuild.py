"""`python -m archiver.rebuild ITEM_ID... | --all`: rebuild items' live state in Redis from the archive.

For the day Redis loses data. Per item it writes, in one atomic Lua call (`core_bidder/lua/rebuild_item.lua`),
the item hash (the fields the bid script uses), the partition index entry, and the event history stream;
bidding then continues at the next seq. It is careful about three things:

- The archive must have caught up: events still in JetStream would later collide with the seqs of new
  bids. So it refuses while the archiver's consumer has anything pending (unless --skip-backlog-check).
- An item that still exists in Redis is left alone (unless --force): Redis may be ahead of the archive.
- A surviving history stream newer than the archive is never overwritten: Redis is ahead there too.

Settings are the archiver's (`ARCHIVER_POSTGRES_DSN`, `ARCHIVER_REDIS_URL`, `ARCHIVER_REDIS_CLUSTER`,
`ARCHIVER_PARTITIONS`, ...). On Redis Cluster each item's call touches keys of its one hash tag only, so it
runs on the node owning it.
Idempotency records and the outbox are not rebuilt: both are short-lived by design.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import nats
import nats.errors

from archiver.live_state import ArchivedBid, ArchivedItem, LiveState, live_state, ms
from archiver.settings import ArchiverSettings
from auction_common.nats_connection import nats_servers
from auction_common.redis_client import AnyRedis, close_redis, make_redis
from auction_contract.redis_layout import item_keys
from core_bidder.scripts import register

if TYPE_CHECKING:
    from collections.abc import Sequence

_ITEM = """SELECT item_id, title, description, currency, starting_price, min_increment,
                  starts_at, ends_at, created_at FROM items WHERE item_id = $1"""
_COUNT = "SELECT count(*) FROM bids WHERE item_id = $1"
_RECENT = """SELECT seq, bidder, amount, placed_at, min_next_bid FROM bids WHERE item_id = $1
             ORDER BY seq DESC LIMIT $2"""
_ALL_ITEMS = "SELECT item_id FROM items WHERE item_id > $1 ORDER BY item_id LIMIT 1000"


@dataclass(frozen=True, slots=True)
class Outcome:
    item_id: str
    # "rebuilt", "exists" (left alone), "missing" (not in the archive), "ahead" (Redis is newer)
    result: str
    seq: int = 0

    @property
    def ok(self) -> bool:
        return self.result in ("rebuilt", "exists")


async def archive_backlog(settings: ArchiverSettings) -> int:
    """Events the archiver has not committed and acked yet (pending plus in flight)."""
    nc = await nats.connect(
        servers=nats_servers(settings.nats_url), connect_timeout=2, max_reconnect_attempts=0
    )
    try:
        info = await nc.jetstream().consumer_info(settings.stream, settings.durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    finally:
        await nc.close()


async def read_item(conn: Any, item_id: str, keep: int) -> tuple[ArchivedItem, int, list[ArchivedBid]] | None:
    row = await conn.fetchrow(_ITEM, item_id)
    if row is None:
        return None
    item = ArchivedItem(
        row["item_id"], row["title"], row["description"], row["currency"], row["starting_price"],
        row["min_increment"], ms(row["starts_at"]), ms(row["ends_at"]), ms(row["created_at"]),
    )  # fmt: skip
    count = int(await conn.fetchval(_COUNT, item_id))
    recent = [
        ArchivedBid(r["seq"], r["bidder"], r["amount"], ms(r["placed_at"]), r["min_next_bid"])
        for r in reversed(await conn.fetch(_RECENT, item_id, keep))
    ]
    return item, count, recent


async def write_item(
    redis: AnyRedis, item: ArchivedItem, state: LiveState, partitions: int, force: bool
) -> str:
    """Write one item's live state atomically; the outcome name (see `Outcome.result`).

    One Lua call rather than WATCH/MULTI/EXEC: the same on a single server and on Redis Cluster, where
    redis-py's cluster transactions run every command on a thread of its own (see
    `auction_common.redis_client`), which a history of thousands of events would pay for per entry.
    """
    keys = item_keys(item.item_id, partitions)
    args: list[str | int] = [
        "1" if force else "0", item.item_id, item.created_ms, state.seq, len(state.fields),
    ]  # fmt: skip
    for name, value in state.fields.items():
        args += (name, value)
    for entry_id, event in state.events:
        args += (entry_id, event)
    result = await register(redis, "rebuild_item")(keys=[keys.item, keys.events, keys.index], args=args)
    return result.decode() if isinstance(result, bytes) else str(result)


async def rebuild(
    settings: ArchiverSettings, item_ids: Sequence[str], every: bool, force: bool
) -> list[Outcome]:
    conn = await asyncpg.connect(settings.postgres_dsn, timeout=settings.connect_timeout_seconds)
    redis = make_redis(settings.redis_url, cluster=settings.redis_cluster)
    outcomes: list[Outcome] = []
    try:
        for item_id in await _targets(conn, item_ids, every):
            found = await read_item(conn, item_id, settings.history_maxlen - 1)
            if found is None:
                outcomes.append(Outcome(item_id, "missing"))
                continue
            item, count, recent = found
            state = live_state(item, count, recent)
            result = await write_item(redis, item, state, settings.partitions, force)
            outcomes.append(Outcome(item_id, result, state.seq))
    finally:
        await conn.close()
        await close_redis(redis)
    return outcomes


async def _targets(conn: Any, item_ids: Sequence[str], every: bool) -> list[str]:
    if not every:
        return list(item_ids)
    found: list[str] = []
    after = ""
    while rows := await conn.fetch(_ALL_ITEMS, after):
        found.extend(row["item_id"] for row in rows)
        after = found[-1]
    return found


async def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m archiver.rebuild",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("item_ids", nargs="*", metavar="ITEM_ID")
    parser.add_argument("--all", action="store_true", help="every item in the archive")
    parser.add_argument("--force", action="store_true", help="overwrite items that still exist in Redis")
    parser.add_argument("--skip-backlog-check", action="store_true", help="rebuild even if the archive lags")
    ns = parser.parse_args(argv)
    if bool(ns.item_ids) == ns.all:
        parser.error("name the items to rebuild, or --all")
    settings = ArchiverSettings()
    if not ns.skip_backlog_check:
        try:
            backlog = await archive_backlog(settings)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            print(f"cannot check the archive's backlog on NATS ({exc!r}); see --skip-backlog-check")
            return 2
        if backlog:
            print(f"the archiver still has {backlog} events to store; try again when it has caught up")
            return 2
    outcomes = await rebuild(settings, ns.item_ids, ns.all, ns.force)
    for outcome in outcomes:
        print(f"{outcome.result} {outcome.item_id}" + (f" seq={outcome.seq}" if outcome.seq else ""))
    return 0 if all(o.ok for o in outcomes) else 1


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
