"""Free TCP port probing.

The machine may run its own Redis (6379), NATS (4222) and Postgres (5432); the stack and the tests must never
touch or depend on those, so every server here listens on a port the kernel hands out. Probing is racy by
nature (another program can take the port between our probe and the server's bind), which is why the server
classes retry on a fresh port when the bind fails.
"""

from __future__ import annotations

import socket

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on `host` that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Tell whether `port` on `host` can be bound right now (used to check a fixed port like the edge's).

    SO_REUSEADDR mirrors what servers do, so a port only lingering in TIME_WAIT counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
