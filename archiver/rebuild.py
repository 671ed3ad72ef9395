"""`python -m archiver.rebuild ITEM_ID... | --all`: rebuild items' live state in Redis from the archive.

For the day Redis loses data. The command reads each item's archived rows (the item with its soft
close rule, reserve, increment ladder, buy-now price and effective end, its bids, extensions and result,
and from the audit records the leader's hidden maximum) and sends them to the bidder
(`BidderAdminService.RestoreItem`, with the bidder's admin token), which writes the item hash, the
partition index entry, the ends entry of an open item (so the closer closes it) and the event history
stream in one atomic step: the bidder stays the only writer of auction state. Bidding then continues at
the next seq; a closed item stays closed with its result. It is careful about three things:

- The archive must have caught up: events still in JetStream would later collide with the seqs of new
  bids, and an audit record not stored yet would leave the leader without their maximum. So it refuses
  while either of the archiver's consumers has anything pending (unless --skip-backlog-check).
- An item that still exists in Redis is left alone (unless --force): Redis may be ahead of the archive.
- A surviving history stream newer than the archive is never overwritten: Redis is ahead there too.

Settings are the archiver's (`ARCHIVER_POSTGRES_DSN`, `ARCHIVER_NATS_URL`, `ARCHIVER_BIDDER_TARGET`,
`ARCHIVER_BIDDER_ADMIN_TOKEN`, `ARCHIVER_HISTORY_MAXLEN`).
Idempotency records and the outbox are not rebuilt: both are short-lived by design.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import nats
import nats.errors
import orjson

from archiver.settings import ArchiverSettings
from auction.v1 import restore_pb2, restore_pb2_grpc
from auction_common.grpc_channels import upstream_channel
from auction_common.nats_connection import nats_servers
from auction_contract.proto_status import OUTCOME_TO_PROTO
from auction_contract.wire_time import timestamp_from_datetime

if TYPE_CHECKING:
    from collections.abc import Sequence

_ITEM = """SELECT item_id, title, description, currency, starting_price, min_increment,
                  starts_at, ends_at, created_at, created_ends_at, soft_window_seconds,
                  soft_extension_seconds, soft_max_ends_at, reserve_price, increments::text,
                  buy_now_price FROM items WHERE item_id = $1"""
_COUNT = "SELECT count(*) FROM bids WHERE item_id = $1"
_RECENT = """SELECT seq, bidder, amount, placed_at, min_next_bid, proxy FROM bids
             WHERE item_id = $1 ORDER BY seq DESC LIMIT $2"""
# AUDIT records (never public): the maximum the leader's newest bid (seq $2) left them, and their raises of
# it at that seq or after (a raise makes no event, so it names the newest event's seq).
_LEADER_MAX = """SELECT max(max_amount) FROM maximum_audit WHERE item_id = $1 AND bidder = $3
                 AND (seq = $2 OR (seq > $2 AND kind = 'raise'))"""
_RECENT_EXTENSIONS = """SELECT seq, ends_at, previous_ends_at FROM extensions WHERE item_id = $1
                        ORDER BY seq DESC LIMIT $2"""
_RESULT = """SELECT seq, outcome, winner, final_price, bid_count, closed_at FROM auction_results
             WHERE item_id = $1"""
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
    """Events and audit records the archiver has not committed and acked yet (pending plus in flight)."""
    nc = await nats.connect(
        servers=nats_servers(settings.nats_url), connect_timeout=2, max_reconnect_attempts=0
    )
    try:
        backlog = 0
        for stream, durable in (
            (settings.stream, settings.durable),
            (settings.audit_stream, settings.audit_durable),
        ):
            info = await nc.jetstream().consumer_info(stream, durable)
            backlog += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return backlog
    finally:
        await nc.close()


async def read_item(conn: Any, item_id: str, keep: int) -> restore_pb2.RestoreItemRequest | None:
    """The item's archived rows as the bidder's restore request, or None.

    With its newest `keep` bids and newest `keep` extensions (the newest `keep` events of the item are
    among them; the bidder keeps those in the history) and its result when it is closed.
    """
    row = await conn.fetchrow(_ITEM, item_id)
    if row is None:
        return None
    item = restore_pb2.ArchivedItem(
        item_id=row["item_id"], title=row["title"], description=row["description"],
        currency=row["currency"], starting_price=row["starting_price"], min_increment=row["min_increment"],
        starts_at=timestamp_from_datetime(row["starts_at"]), ends_at=timestamp_from_datetime(row["ends_at"]),
        created_at=timestamp_from_datetime(row["created_at"]),
        created_ends_at=timestamp_from_datetime(row["created_ends_at"] or row["ends_at"]),
    )  # fmt: skip
    if row["soft_window_seconds"] is not None:
        item.soft_close.window_seconds = row["soft_window_seconds"]
        item.soft_close.extension_seconds = row["soft_extension_seconds"]
        if row["soft_max_ends_at"] is not None:
            item.soft_close.max_ends_at.CopyFrom(timestamp_from_datetime(row["soft_max_ends_at"]))
    if row["reserve_price"] is not None:
        item.reserve_price = row["reserve_price"]
    for step in orjson.loads(row["increments"] or "[]"):
        item.increments.add(from_price=step["from"], increment=step["increment"])
    if row["buy_now_price"] is not None:
        item.buy_now_price = row["buy_now_price"]
    closed = None
    result = await conn.fetchrow(_RESULT, item_id)
    if result is not None:
        item.result.outcome = OUTCOME_TO_PROTO[result["outcome"]]
        item.result.closed_at.CopyFrom(timestamp_from_datetime(result["closed_at"]))
        if result["winner"] is not None:
            item.result.winner = result["winner"]
        if result["final_price"] is not None:
            item.result.final_price = result["final_price"]
        closed = restore_pb2.ArchivedClose(seq=result["seq"], bid_count=result["bid_count"])
    extensions = [
        restore_pb2.ArchivedExtension(
            seq=r["seq"],
            ends_at=timestamp_from_datetime(r["ends_at"]),
            previous_ends_at=timestamp_from_datetime(r["previous_ends_at"]),
        )
        for r in reversed(await conn.fetch(_RECENT_EXTENSIONS, item_id, keep))
    ]
    count = int(await conn.fetchval(_COUNT, item_id))
    rows = list(reversed(await conn.fetch(_RECENT, item_id, keep)))
    recent = [
        restore_pb2.ArchivedBid(
            seq=r["seq"],
            bidder=r["bidder"],
            amount=r["amount"],
            placed_at=timestamp_from_datetime(r["placed_at"]),
            min_next_bid=r["min_next_bid"],
            proxy=r["proxy"],
        )
        for r in rows
    ]
    request = restore_pb2.RestoreItemRequest(
        item=item, bid_count=count, recent_bids=recent, recent_extensions=extensions, closed=closed
    )
    if rows:
        leader_max = await _leader_max(conn, item_id, rows[-1])
        if leader_max is not None:
            request.leader_max = leader_max
    return request


async def _leader_max(conn: Any, item_id: str, newest: Any) -> int | None:
    """The leader's hidden maximum from the audit records, when above the price: the one their newest
    bid left (its bidder is the leader, the price its amount), or a later raise of their own."""
    top = await conn.fetchval(_LEADER_MAX, item_id, newest["seq"], newest["bidder"])
    return top if top is not None and top > newest["amount"] else None


_OUTCOMES = {
    restore_pb2.RESTORE_RESULT_REBUILT: "rebuilt",
    restore_pb2.RESTORE_RESULT_EXISTS: "exists",
    restore_pb2.RESTORE_RESULT_AHEAD: "ahead",
}


async def rebuild(
    settings: ArchiverSettings, item_ids: Sequence[str], every: bool, force: bool
) -> list[Outcome]:
    conn = await asyncpg.connect(settings.postgres_dsn, timeout=settings.connect_timeout_seconds)
    token = settings.bidder_admin_token.get_secret_value() if settings.bidder_admin_token else ""
    metadata = (("authorization", f"Bearer {token}"),)
    channel = upstream_channel(settings.bidder_target, settings)
    bidder = restore_pb2_grpc.BidderAdminServiceStub(channel)
    outcomes: list[Outcome] = []
    try:
        for item_id in await _targets(conn, item_ids, every):
            request = await read_item(conn, item_id, settings.history_maxlen - 1)
            if request is None:
                outcomes.append(Outcome(item_id, "missing"))
                continue
            request.force = force
            reply = await bidder.RestoreItem(request, metadata=metadata, timeout=60)
            outcomes.append(Outcome(item_id, _OUTCOMES[reply.result], reply.seq))
    finally:
        await conn.close()
        await channel.close(grace=None)
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
    try:
        outcomes = await rebuild(settings, ns.item_ids, ns.all, ns.force)
    except grpc.aio.AioRpcError as exc:
        print(f"the bidder at {settings.bidder_target} refused: {exc.code().name} {exc.details()}")
        return 2
    for outcome in outcomes:
        print(f"{outcome.result} {outcome.item_id}" + (f" seq={outcome.seq}" if outcome.seq else ""))
    return 0 if all(o.ok for o in outcomes) else 1


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
