"""`python -m core_bidder`: run the bidder until SIGTERM or SIGINT, then drain and exit."""

from __future__ import annotations

import asyncio
import signal

import uvloop
from prometheus_client import start_http_server

from core_bidder.logs import configure_logging
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings


async def serve(settings: BidderSettings) -> None:
    server = BidderServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main() -> None:
    settings = BidderSettings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
