"""/healthz, /readyz and /metrics over a few lines of asyncio, for a process that serves nothing else.

The relay has no API, so a web framework would be dead weight; probes and Prometheus need only GET,
one request per connection. Anything else is answered 404/405 and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Readiness = Callable[[], list[str]]
"""Returns the reasons the relay is not ready; empty means ready."""

_REQUEST_TIMEOUT = 5.0
_MAX_HEAD = 8192


class OpsServer:
    def __init__(self, host: str, port: int, live: Callable[[], bool], readiness: Readiness) -> None:
        self._host = host
        self._port = port
        self._live = live
        self._readiness = readiness
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=_MAX_HEAD)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                status, content_type, body = self._respond(head.split(b"\r\n", 1)[0])
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _respond(self, request_line: bytes) -> tuple[str, str, bytes]:
        parts = request_line.split(b" ")
        if len(parts) != 3:
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method != b"GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if target == b"/healthz":
            if self._live():
                return "200 OK", "application/json", b'{"status":"ok"}'
            return "503 Service Unavailable", "application/json", b'{"status":"starting"}'
        if target == b"/readyz":
            problems = self._readiness()
            if problems:
                return "503 Service Unavailable", "application/json", orjson.dumps({"problems": problems})
            return "200 OK", "application/json", b'{"status":"ready"}'
        if target == b"/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        return "404 Not Found", "text/plain", b"not found\n"
