"""Process entry point: settings from the environment, logging, then uvicorn.

uvicorn runs with uvloop and httptools, through `http_protocol.EdgeHttpProtocol`, which bounds the
request head (`EDGE_MAX_HEADER_BYTES`, `EDGE_HEADER_TIMEOUT_SECONDS`: uvicorn bounds neither under
httptools), no access log (it costs throughput on the bid path; metrics count every request instead),
no proxy-header rewriting (unless `EDGE_FORWARDED_ALLOW_IPS` names the proxies in front, such as a load
balancer, whose `X-Forwarded-For` then gives the client address the per-address limits key on) and no
`server` header. SIGTERM and SIGINT trigger uvicorn's graceful shutdown: stop accepting, finish
in-flight requests for up to `EDGE_SHUTDOWN_GRACE_SECONDS`, then run the lifespan's shutdown, which
closes the gRPC channels.
With `EDGE_WORKERS` > 1 uvicorn's supervisor spawns worker processes that each build the app from the
environment; `main` starts it itself rather than through `uvicorn.run`, which would build a plain
`uvicorn.Config` without the head timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from uvicorn.supervisors import Multiprocess

from auction_common.config import load_settings
from edge_gateway.app import create_app
from edge_gateway.http_protocol import EdgeHttpProtocol, EdgeServerConfig
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
        "http": EdgeHttpProtocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "server_header": False,
        "log_config": None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }


def server_config(app: Any, settings: EdgeSettings, **overrides: Any) -> EdgeServerConfig:
    """The uvicorn configuration for `app` (an app, or an import string with `factory=True`)."""
    options = {**server_options(settings), **overrides}
    return EdgeServerConfig(app, header_timeout_seconds=settings.header_timeout_seconds, **options)


def main() -> int:
    """Run the gateway until SIGTERM/SIGINT; 2 when the configuration is unusable."""
    settings = load_settings(EdgeSettings, "edge gateway")
    if settings is None:
        return 2
    configure_logging(settings.log_level, json=settings.environment == "production")
    log = structlog.get_logger("edge_gateway")
    for problem in secret_problems(settings.secret) if settings.jwt_algorithm == "HS256" else ():
        log.warning("weak jwt secret (refused in production)", problem=problem)
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
        config = server_config(
            "edge_gateway.main:app_from_env", settings, factory=True, workers=settings.workers
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(server_config(create_app(settings), settings)).run()
    return 0
