"""`python -m core_bidder`: run the bidder until SIGTERM or SIGINT, then drain and exit."""

from __future__ import annotations

import sys

import uvloop
from prometheus_client import start_http_server
from pydantic import ValidationError

from auction_common.lifecycle import run_until_signal
from auction_common.logs import configure_logging
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings


async def serve(settings: BidderSettings) -> None:
    server = BidderServer(settings)
    await run_until_signal(server.start, server.stop)


def main() -> None:
    try:
        settings = BidderSettings()
    except ValidationError as exc:  # e.g. BIDDER_STRATEGY=watch with BIDDER_REDIS_CLUSTER=true
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"bidder: invalid configuration: {where}: {error['msg']}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_json)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
