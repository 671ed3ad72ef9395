"""How every service process lives: start, run until SIGTERM or SIGINT, stop cleanly.

A signal that arrives while the service is still starting (e.g. waiting for a database) cancels the
start and still runs `stop`, so nothing half-open is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable


async def run_until_signal(
    start: Callable[[], Awaitable[object]], stop: Callable[[], Awaitable[None]]
) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    starting = asyncio.ensure_future(start())
    stopping = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()
            await stopping
    finally:
        stopping.cancel()
        await stop()
