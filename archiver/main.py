"""`python -m archiver`: archive events and serve history until SIGTERM or SIGINT, then drain and exit."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvloop
from prometheus_client import start_http_server

from archiver.server import ArchiverServer
from archiver.settings import ArchiverSettings
from core_bidder.logs import configure_logging


async def serve(settings: ArchiverSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = ArchiverServer(settings)
    starting = asyncio.create_task(server.start())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()  # a signal while waiting for PostgreSQL: give up starting
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()
            await stopping
    finally:
        stopping.cancel()
        await server.stop()


def main() -> None:
    settings = ArchiverSettings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
