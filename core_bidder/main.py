"""`python -m core_bidder`: run the bidder until SIGTERM or SIGINT, then drain and exit."""

from __future__ import annotations

import sys

import uvloop
from prometheus_client import start_http_server

from auction_common.config import load_settings
from auction_common.lifecycle import run_until_signal
from auction_common.logs import configure_logging
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings


async def serve(settings: BidderSettings) -> None:
    server = BidderServer(settings)
    await run_until_signal(server.start, server.stop)


def main() -> None:
    settings = load_settings(BidderSettings, "bidder")  # e.g. strategy=watch on a Redis Cluster
    if settings is None:
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_json)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
