"""A NATS connection that outlives NATS restarts: retried until the first connect, reconnecting forever.

Shared by the relay and the archiver, which both must ride out a NATS outage rather than exit. The ping
interval is short so that a frozen server (SIGSTOP, a dead peer) is noticed in seconds, not minutes.

The URL may name several servers, comma-separated (the nodes of a NATS cluster). The client connects to
any reachable one, learns the rest of the cluster from it (INFO `connect_urls`), and on losing its server
reconnects to another: that is the failover the relay and the archiver rely on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from pydantic import AfterValidator

log = structlog.get_logger(__name__)
ERROR_LOG_INTERVAL_SECONDS = 10.0


def nats_servers(urls: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` (spaces allowed) as a list of URLs, as nats-py's `servers` wants."""
    servers = [url.strip() for url in urls.split(",") if url.strip()]
    if not servers:
        raise ValueError("no NATS server URL given")
    return servers


def _checked_urls(urls: str) -> str:
    nats_servers(urls)
    return urls


# A settings field holding one NATS URL or a comma-separated list, refused at startup when empty.
NatsUrls = Annotated[str, AfterValidator(_checked_urls)]


async def connect_nats(
    url: str, *, name: str, ping_interval: float, connect_timeout: float, retry_max: float
) -> NatsClient:
    nc = NatsClient()  # a fresh one per attempt (below); the callbacks see the current one

    async def disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):  # our own close is not news
            log.warning("nats_disconnected", connection=name)

    async def reconnected() -> None:
        log.info("nats_reconnected", connection=name)

    last_error = [0.0]

    async def error(exc: Exception) -> None:
        # While NATS is away every reconnect attempt fails; once per interval is enough to read.
        now = time.monotonic()
        if now - last_error[0] >= ERROR_LOG_INTERVAL_SECONDS:
            last_error[0] = now
            log.warning("nats_error", connection=name, error=repr(exc))

    servers = nats_servers(url)
    delay = 0.1
    while True:
        nc = NatsClient()
        try:
            await nc.connect(
                servers=servers,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=max(1, round(connect_timeout)),
                ping_interval=max(1, round(ping_interval)),
                max_outstanding_pings=2,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
            return nc
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            log.warning("nats_connect_failed", connection=name, error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max)
