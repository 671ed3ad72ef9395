"""The server's connection class: websockets' `ServerConnection` plus what one viewer needs.

Slow viewers are found by the transport itself, at no cost per broadcast: the connection's write
buffer limit is the slow-viewer bound, and once a live viewer's unsent data crosses it the transport
calls `pause_writing`, which hands the viewer to `on_slow` (the feed drops it and closes it with 1013).
While the viewer is still joining, the same limit is ordinary backpressure for `send()`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection


class ViewerConnection(ServerConnection):
    """One viewer: the item and `since` it asked for, or `/ws/me` and its token (set at the handshake),
    and its slow hook."""

    item_id: str = ""
    since: int | None = None
    # `/ws/me` (per-bidder notices) rather than an item; the token if the handshake carried one.
    notices: bool = False
    bearer_token: str | None = None
    on_slow: Callable[[ViewerConnection], None] | None = None
    # Set on a subclass by `configured` (the server's settings); 0 keeps the kernel's default.
    socket_send_buffer = 0

    @classmethod
    def configured(cls, socket_send_buffer: int) -> type[ViewerConnection]:
        """A subclass carrying the per-socket settings (websockets instantiates the class itself)."""
        return type("ConfiguredViewerConnection", (cls,), {"socket_send_buffer": socket_send_buffer})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.socket_send_buffer:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_send_buffer)
        super().connection_made(transport)

    def pause_writing(self) -> None:
        super().pause_writing()
        hook = self.on_slow
        if hook is not None:
            self.on_slow = None
            hook(self)
