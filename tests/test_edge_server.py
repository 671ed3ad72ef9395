"""The gateway over real HTTP: uvicorn with httptools in-process, and `python -m edge_gateway` as a
process (start, readiness signal, SIGTERM, clean exit)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from edge_gateway.app import create_app
from edge_gateway.main import main, server_options
from tests.conftest import TIME_UNIT
from tests.test_edge_support import (
    SECRET,
    bearer,
    fake_upstream,
    free_port,
    make_settings,
    make_token,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from edge_gateway.settings import EdgeSettings


@asynccontextmanager
async def serving(settings: EdgeSettings) -> AsyncIterator[int]:
    """uvicorn with the gateway's own options, on a free port; yields the port once it listens."""
    port = free_port()
    options = {**server_options(settings), "port": port, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **options))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10 * TIME_UNIT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


async def raw_exchange(port: int, request: bytes, *, body_chunks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """Send bytes over a plain socket and read until the server closes or answers completely."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(5 * TIME_UNIT):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            return head + await reader.readexactly(length)
    finally:
        writer.close()


async def test_bid_over_real_http() -> None:
    """A bid through uvicorn+httptools and a real gRPC channel comes back as the 201 JSON."""
    async with (
        fake_upstream() as upstream,
        serving(make_settings(bidder_target=upstream.target)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        response = await client.post("/items/lot-1/bid", json={"amount": 1000}, headers=bearer(make_token()))
        assert response.status_code == 201
        assert response.json()["item"]["current_price"] == 1000
        assert "server" not in response.headers


async def test_declared_oversize_body_is_refused_before_it_is_sent() -> None:
    """A 10 MiB Content-Length gets 413 problem+json at once, without the server waiting for the body."""
    async with serving(make_settings()) as port:
        token = make_token()
        head = (
            f"POST /items/lot-1/bid HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10 << 20}\r\n\r\n"
        ).encode()
        answer = await raw_exchange(port, head + b'{"amount": ')
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"content-type: application/problem+json" in answer
        assert b'"type":"payload-too-large"' in answer


async def test_client_sending_the_whole_oversize_body_reads_the_413() -> None:
    """A client that writes all 10 MiB before reading gets the 413, not a connection reset, and the
    connection stays usable for the next request."""
    async with (
        serving(make_settings()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        headers = {**bearer(make_token()), "content-type": "application/json"}
        body = b'{"amount": 150, "pad": "' + b"x" * (10 << 20) + b'"}'
        response = await client.post("/items/lot-1/bid", content=body, headers=headers)
        assert response.status_code == 413
        assert response.json()["type"] == "payload-too-large"
        assert (await client.get("/healthz")).status_code == 200


async def test_chunked_oversize_body_is_refused_while_streaming() -> None:
    """A chunked body is cut off once it passes max_body_bytes."""
    async with serving(make_settings(max_body_bytes=1024)) as port:
        token = make_token()
        head = (
            f"POST /items/lot-1/bid HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"200\r\n" + b" " * 512 + b"\r\n"
        answer = await raw_exchange(port, head, body_chunks=[chunk] * 3)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b'"type":"payload-too-large"' in answer


def test_main_refuses_to_start_without_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUCTION_JWT_SECRET", raising=False)
    assert main() == 2
    assert "AUCTION_JWT_SECRET is not set" in capsys.readouterr().err


def test_main_refuses_placeholder_secret_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    placeholder = "changeme-changeme-changeme-changeme"
    monkeypatch.setenv("AUCTION_JWT_SECRET", placeholder)
    monkeypatch.setenv("EDGE_ENVIRONMENT", "production")
    assert main() == 2
    err = capsys.readouterr().err
    assert "placeholder" in err
    assert placeholder not in err


async def test_process_starts_serves_and_stops_on_sigterm() -> None:
    """`python -m edge_gateway`: ready line, /healthz 200, then SIGTERM -> graceful shutdown.

    uvicorn re-raises the captured SIGTERM after its graceful shutdown, so the exit status is the
    signal's (what process supervisors expect); the lifespan's shutdown must have completed first.
    """
    port = free_port()
    env = {
        **os.environ,
        "AUCTION_JWT_SECRET": SECRET,
        "EDGE_PORT": str(port),
        "EDGE_BIDDER_TARGET": f"127.0.0.1:{free_port()}",
        "EDGE_SHUTDOWN_GRACE_SECONDS": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_gateway", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20 * TIME_UNIT):
            while b"Uvicorn running on" not in (line := await process.stderr.readline()):
                assert line, "the gateway exited before it was ready"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10 * TIME_UNIT):
            rest = await process.stderr.read()
            assert await process.wait() in (0, -signal.SIGTERM)
        assert b"Application shutdown complete" in rest, rest
        assert b"Traceback" not in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
