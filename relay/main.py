"""`python -m relay`: relay the outbox until SIGTERM or SIGINT, then finish the round and exit."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvloop

from core_bidder.logs import configure_logging
from relay.service import RelayService
from relay.settings import RelaySettings


async def serve(settings: RelaySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = RelayService(settings)
    starting = asyncio.create_task(service.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()  # a signal while still connecting: give up connecting, close cleanly
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()
            await stopping
    finally:
        stopping.cancel()
        await service.stop()


def main() -> None:
    settings = RelaySettings()
    configure_logging(settings.log_level, settings.log_json)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
