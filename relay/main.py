"""`python -m relay`: relay the outbox until SIGTERM or SIGINT, then finish the round and exit."""

from __future__ import annotations

import sys

import uvloop

from auction_common.config import load_settings
from auction_common.lifecycle import run_until_signal
from auction_common.logs import configure_logging
from relay.service import RelayService
from relay.settings import RelaySettings


async def serve(settings: RelaySettings) -> None:
    service = RelayService(settings)
    await run_until_signal(service.start, service.stop)


def main() -> None:
    settings = load_settings(RelaySettings, "relay")
    if settings is None:
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_json)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
