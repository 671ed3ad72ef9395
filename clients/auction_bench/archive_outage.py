"""One outage of PostgreSQL or NATS under a running bid load, for `archive_bench`.

Modes: `kill` (SIGKILL of the server and every process it forked, then a restart on the same port and
data; PostgreSQL runs crash recovery), `freeze` (SIGSTOP of all of them, then SIGCONT: connections stay
open and nothing answers), `stop` (the server's own graceful shutdown, then a restart). Catch-up is
measured against the bidder's own count of accepted bids at recovery, not guessed from the archive
going quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

import asyncpg

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_bench.outage_figures import Phase, Point
from devstack.servers import ServerProcess

MODES = ("kill", "freeze", "stop")


@dataclass
class Outage:
    kind: str  # "<server>-<mode>"
    server: str
    mode: str
    seconds: float  # from going down to serving again (a restart's crash recovery included)
    backlog: int
    catch_up_seconds: float
    catch_up_events_per_s: float
    caught_up: bool
    # (start, end) of the before, during and after windows, Unix seconds.
    marks: list[tuple[float, float]] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    timeline: list[Point] = field(default_factory=list)


async def take_down(server: ServerProcess, mode: str) -> None:
    if mode == "kill":
        server.kill()
        await server.wait()
    elif mode == "freeze":
        server.pause()
    else:
        await server.stop()


async def bring_up(server: ServerProcess, mode: str) -> None:
    if mode == "freeze":
        server.resume()
    else:
        await server.restart()


async def accepted_so_far(stub: bidder_pb2_grpc.BidderServiceAsyncStub, items: list[str]) -> int:
    """Bids the bidder has accepted on these items so far (each item's own count)."""
    total = 0
    for item_id in items:
        reply = await stub.GetItem(bidder_pb2.GetItemRequest(item_id=item_id), timeout=10)
        total += reply.item.bid_count
    return total


class ArchiveProbe:
    """Counts the archived bids of some items over one connection, reopened when PostgreSQL drops it."""

    def __init__(self, dsn: str, items: list[str]) -> None:
        self._dsn = dsn
        self._items = items
        self._conn: asyncpg.Connection | None = None

    async def count(self) -> int | None:
        """The count, or None while PostgreSQL does not answer."""
        try:
            if self._conn is None:
                self._conn = await asyncpg.connect(self._dsn, timeout=2)
            query = "SELECT count(*) FROM bids WHERE item_id = ANY($1::text[])"
            return int(await self._conn.fetchval(query, self._items, timeout=2))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self.close()
            return None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


async def outage(
    servers: dict[str, ServerProcess],
    dsn: str,
    stub: bidder_pb2_grpc.BidderServiceAsyncStub,
    items: list[str],
    kind: str,
    ns: argparse.Namespace,
) -> Outage:
    """One outage under the running load: down, back, then wait until the backlog is archived.

    The backlog is what the bidder has accepted on the load's items at recovery minus what the archive
    held when the server came back (read while PostgreSQL still answers: just before it goes down, or
    just before NATS comes back). Catch-up ends when the archive holds every bid accepted at recovery.
    """
    server_name, mode = kind.split("-", 1)
    server = servers[server_name]
    probe = ArchiveProbe(dsn, items)
    try:
        await asyncio.sleep(ns.before)
        archived = await probe.count() if server_name == "postgres" else None  # frozen while it is down
        down_at = time.time()
        await take_down(server, mode)
        await asyncio.sleep(max(0.0, down_at + ns.outage - time.time()))
        if server_name != "postgres":
            archived = await probe.count()  # nothing more arrives while NATS is down
        await bring_up(server, mode)
        up_at = time.time()
        target = await accepted_so_far(stub, items)
        done_at: float | None = None
        while time.time() - up_at < ns.max_catch_up:
            count = await probe.count()
            if count is not None:
                archived = count if archived is None else archived
                if count >= target:
                    done_at = time.time()
                    break
            await asyncio.sleep(0.05)
    finally:
        await probe.close()
    caught_up = done_at is not None
    catch_up = (done_at if done_at is not None else time.time()) - up_at
    backlog = target - (archived or 0)
    after_until = up_at + max(ns.after, catch_up)
    await asyncio.sleep(max(0.0, after_until - time.time()))
    return Outage(
        kind, server_name, mode, up_at - down_at, backlog, catch_up,
        backlog / catch_up if catch_up > 0 else 0.0, caught_up,
        marks=[(down_at - ns.before, down_at), (down_at, up_at), (up_at, after_until)],
    )  # fmt: skip


def kinds(outages: str) -> list[str]:
    """`postgres-kill,nats-freeze,...` checked: a known server and mode each."""
    result = []
    for kind in (k.strip() for k in outages.split(",") if k.strip()):
        server, _, mode = kind.partition("-")
        if server not in ("postgres", "nats") or mode not in MODES:
            raise ValueError(f"unknown outage {kind!r}: <postgres|nats>-<{'|'.join(MODES)}>")
        result.append(kind)
    return result
