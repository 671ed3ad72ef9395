"""Run one piece of database work with a hard deadline that also works against a frozen server.

asyncpg's own timeouts cancel the query politely, which means more network round trips to a server
that may not answer at all (SIGSTOPped, partitioned). Here, past the deadline the connection is
terminated (its socket closed, no waiting) and the work abandoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    pass


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # mark it retrieved: the work was abandoned on purpose


async def within(seconds: float, conn: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """`await work(conn)`, or terminate `conn` and raise `DeadlineExceeded` after `seconds`."""
    task = asyncio.ensure_future(work(conn))
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        conn.terminate()
        task.cancel()
        task.add_done_callback(_retrieve)
        raise
    if not done:
        conn.terminate()
        task.cancel()
        task.add_done_callback(_retrieve)
        raise DeadlineExceeded(f"no answer within {seconds}s")
    return task.result()
