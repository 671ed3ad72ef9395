"""Process entry point: settings from the environment, logging, then uvicorn.

uvicorn runs with uvloop and httptools, no access log (it costs throughput on the bid path; metrics
count every request instead), no proxy-header rewriting and no `server` header. SIGTERM and SIGINT
trigger uvicorn's graceful shutdown: stop accepting, finish in-flight requests for up to
`EDGE_SHUTDOWN_GRACE_SECONDS`, then run the lifespan's shutdown, which closes the gRPC channels.
With `EDGE_WORKERS` > 1 uvicorn spawns worker processes that each build the app from the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
import uvicorn

from auction_common.config import load_settings
from edge_gateway.app import create_app
from edge_gateway.logs import configure_logging
from edge_gateway.settings import EdgeSettings, secret_problems

if TYPE_CHECKING:
    from fastapi import FastAPI


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes (each reads the same environment)."""
    settings = EdgeSettings()
    configure_logging(settings.log_level, json=settings.environment == "production")
    return create_app(settings)


def server_options(settings: EdgeSettings) -> dict[str, Any]:
    """uvicorn options (see the module docstring for why each is set)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "log_config": None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }


def main() -> int:
    """Run the gateway until SIGTERM/SIGINT; 2 when the configuration is unusable."""
    settings = load_settings(EdgeSettings, "edge gateway")
    if settings is None:
        return 2
    configure_logging(settings.log_level, json=settings.environment == "production")
    log = structlog.get_logger("edge_gateway")
    for problem in secret_problems(settings.secret):
        log.warning("weak jwt secret (refused in production)", problem=problem)
    common = server_options(settings)
    log.info(
        "starting edge gateway",
        host=settings.host,
        port=settings.port,
        bidder=settings.bidder_target,
        history=settings.history_target or None,
        workers=settings.workers,
        environment=settings.environment,
    )
    if settings.workers > 1:
        uvicorn.run("edge_gateway.main:app_from_env", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.Server(uvicorn.Config(create_app(settings), **common)).run()
    return 0
