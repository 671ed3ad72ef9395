"""Lean WebSocket viewers spread over several items, in a worker process (the mixed-load experiment).

The viewers are `fanout_viewers`' own (bare uvloop protocols that check every stream's seq order as it
arrives); this worker only spreads them round-robin over the items and keeps one tally per item, since
seqs are per item.
"""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from auction_bench.fanout_viewers import Tally, open_viewers, raise_file_limit


def worker(pipe: Connection, host: str, port: int, item_ids: list[str], count: int) -> None:
    """Open `count` viewers over `item_ids`, say ("ready", connected, failed), record until told
    "report", then send {item_id: Tally}."""
    raise_file_limit()

    async def run() -> None:
        tallies = {item_id: Tally() for item_id in item_ids}
        shares = [
            count // len(item_ids) + (1 if i < count % len(item_ids) else 0) for i in range(len(item_ids))
        ]
        parallel = max(1, 100 // len(item_ids))
        groups = await asyncio.gather(
            *(
                open_viewers(host, port, item_id, share, tallies[item_id], parallel=parallel)
                for item_id, share in zip(item_ids, shares, strict=True)
            )
        )
        connected = sum(t.connected for t in tallies.values())
        pipe.send(("ready", connected, sum(t.failed for t in tallies.values())))
        loop = asyncio.get_running_loop()
        command: Any = await loop.run_in_executor(None, pipe.recv)
        assert command == "report"
        for item_id, viewers in zip(item_ids, groups, strict=True):
            tallies[item_id].last_seqs = [v.last_seq for v in viewers]
            for viewer in viewers:
                viewer.close(loop)
        pipe.send(tallies)

    uvloop.run(run())
