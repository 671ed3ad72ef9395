"""structlog for the gateway and for the libraries that log through the standard library (uvicorn).

JSON lines in production (one event per line for the log pipeline), a readable console locally.
Standard-library records go through the same processors, so uvicorn's startup and error lines match.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str, *, json: bool) -> None:
    """Configure structlog and the root logger once, at process start."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    console = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    renderer: structlog.types.Processor = structlog.processors.JSONRenderer() if json else console
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The access log stays off (it costs throughput; metrics count requests), also in worker
    # processes, where this runs after uvicorn applied `access_log=False`.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
