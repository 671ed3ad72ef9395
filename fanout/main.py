"""`python -m fanout`: serve viewers until SIGTERM or SIGINT, then close them with 1012 and exit.

Runs on uvloop. Start one process per core on the same port (SO_REUSEPORT is on by default): the
kernel spreads new connections over them and each keeps its own subscriptions.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal

import structlog
import uvloop

from auction_common.config import load_settings
from auction_common.logs import configure_logging
from fanout.server import FanoutServer
from fanout.settings import FanoutSettings


async def serve(settings: FanoutSettings) -> None:
    server = FanoutServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def raise_file_limit() -> None:
    """Each viewer is a file descriptor: lift the soft limit to the hard one (where it is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_to_cpu(cpu: int) -> None:
    """Run only on `cpu` (FANOUT_CPU), when this process may use it."""
    if cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})
    else:
        structlog.get_logger(__name__).warning("fanout_cpu_not_allowed", cpu=cpu)


def main() -> int:
    settings = load_settings(FanoutSettings, "fanout")
    if settings is None:
        return 2
    configure_logging(settings.log_level, settings.log_json)
    raise_file_limit()
    if settings.cpu is not None:
        pin_to_cpu(settings.cpu)
    uvloop.run(serve(settings))
    return 0
