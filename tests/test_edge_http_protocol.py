"""The request head over real sockets: a size cap (431/414), a read timeout against slowloris (408 or
close), and problem+json for what the HTTP parser refuses (400, 501), in-process and in
`python -m edge_gateway` with its settings from the environment (one and two workers)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from edge_gateway.app import create_app
from edge_gateway.main import server_config
from tests.conftest import TIME_UNIT, scaled
from tests.test_edge_support import SECRET, free_port, make_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from edge_gateway.settings import EdgeSettings

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@asynccontextmanager
async def serving(settings: EdgeSettings) -> AsyncIterator[int]:
    """The gateway under uvicorn exactly as `main` configures it, on a free port."""
    port = free_port()
    server = uvicorn.Server(server_config(create_app(settings), settings, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(scaled(10)):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes; a reset counts as closed. Fails after `within` s."""
    received = b""
    async with asyncio.timeout(within):
        try:
            while chunk := await reader.read(65_536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


async def exchange(port: int, data: bytes, *, within: float = scaled(5)) -> bytes:
    """Send `data`, then read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_until_closed(reader, within)
    finally:
        writer.close()


def assert_problem_answer(answer: bytes, status: int, problem_type: str) -> None:
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head
    assert b"x-content-type-options: nosniff" in head
    assert f'"type":"{problem_type}"'.encode() in body
    assert f'"status":{status}'.encode() in body


@pytest.fixture
async def edge_port() -> AsyncIterator[int]:
    async with serving(make_settings(header_timeout_seconds=1.0 * TIME_UNIT)) as port:
        yield port


async def test_64_kib_of_headers_is_431_and_closed(edge_port: int) -> None:
    """A 64 KiB header field is refused with 431 and the connection closed, before the app runs."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 65_536 + b"\r\n\r\n"
    answer = await exchange(edge_port, request)
    if answer:  # the refusal can race the rest of the upload into a reset, which also closes
        assert_problem_answer(answer, 431, "header-fields-too-large")


async def test_many_small_headers_over_the_cap_are_431(edge_port: int) -> None:
    """The cap counts the whole head, not one field: 640 fields of 100 bytes are refused too."""
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"a" * 100) for i in range(640))
    answer = await exchange(edge_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert_problem_answer(answer, 431, "header-fields-too-large")


async def test_header_streamed_in_small_chunks_is_cut_off() -> None:
    """One endless header value sent in 1 KiB chunks: the server closes after about the cap, long
    before the client has sent its 1 MiB (the field never completes, so only chunks are counted)."""
    async with serving(make_settings(max_header_bytes=4096)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = 0
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            with pytest.raises((ConnectionError, TimeoutError)):  # noqa: PT012 (the loop is the action)
                async with asyncio.timeout(scaled(5)):
                    while sent < 1 << 20:
                        writer.write(b"a" * 1024)
                        await writer.drain()
                        sent += 1024
                        await asyncio.sleep(0.002)
                        if reader.at_eof():
                            raise ConnectionResetError("closed by the server")
        finally:
            writer.close()
        assert sent < 256 * 1024


async def test_head_just_under_the_cap_is_served(edge_port: int) -> None:
    """A 15 KiB head (a big token, cookies) is still a normal request."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 15_000 + b"\r\nConnection: close\r\n\r\n"
    )
    answer = await exchange(edge_port, request)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


async def test_overlong_request_target_is_414(edge_port: int) -> None:
    answer = await exchange(edge_port, b"GET /items/" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_problem_answer(answer, 414, "uri-too-long")


async def test_partial_request_line_then_idle_is_408_and_closed(edge_port: int) -> None:
    """Slowloris: a request line that never ends is answered 408 and closed at the 1 s timeout."""
    started = time.monotonic()
    answer = await exchange(edge_port, b"GET /ite", within=scaled(5))
    assert 0.8 * TIME_UNIT <= time.monotonic() - started < scaled(4)
    assert_problem_answer(answer, 408, "request-timeout")


async def test_head_sent_a_byte_at_a_time_is_cut_at_the_timeout(edge_port: int) -> None:
    """Trickling bytes does not extend the deadline: it runs from the request's first byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", edge_port)

    async def trickle() -> None:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1 * TIME_UNIT)

    started = time.monotonic()
    trickling = asyncio.create_task(trickle())
    try:
        answer = await read_until_closed(reader, scaled(5))
    finally:
        trickling.cancel()
        writer.close()
    assert time.monotonic() - started < scaled(4)
    assert_problem_answer(answer, 408, "request-timeout")


async def test_connection_that_never_sends_is_closed_silently(edge_port: int) -> None:
    """An opened connection with no request is closed at the timeout, without an answer."""
    started = time.monotonic()
    assert await exchange(edge_port, b"", within=scaled(5)) == b""
    assert time.monotonic() - started < scaled(4)


async def test_kept_alive_connection_gets_a_fresh_head_deadline(edge_port: int) -> None:
    """After a served request, a stalled second head on the same connection is cut off too."""
    reader, writer = await asyncio.open_connection("127.0.0.1", edge_port)
    try:
        writer.write(HEALTHZ)
        first = await reader.readuntil(b'{"status":"ok"}')
        assert first.startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(0.8 * TIME_UNIT)  # longer than what is left of any deadline from the open
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        started = time.monotonic()
        answer = await read_until_closed(reader, scaled(5))
    finally:
        writer.close()
    assert 0.8 * TIME_UNIT <= time.monotonic() - started < scaled(4)
    assert_problem_answer(answer, 408, "request-timeout")


async def test_slow_app_is_not_cut_by_the_head_timeout() -> None:
    """The deadline ends with the head: a request the app takes longer than it to answer completes."""
    async with serving(make_settings(header_timeout_seconds=0.3, grpc_timeout_seconds=1.0)) as port:
        # Nobody listens on the bidder target: the answer (a 503) comes after the bidder call fails.
        answer = await exchange(port, b"GET /items/lot-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]


async def test_pipelined_requests_are_all_served(edge_port: int) -> None:
    """Several requests in one write are each answered (the head accounting is per request)."""
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await exchange(edge_port, HEALTHZ * 20 + last)
    assert answer.count(b"HTTP/1.1 200 ") == 21


async def test_head_over_http_has_get_headers_and_no_body(edge_port: int) -> None:
    """uvicorn drops the body of the GET the app ran for a HEAD; the headers stay GET's."""
    answer = await exchange(edge_port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 15" in head
    assert b"x-content-type-options: nosniff" in head
    assert b"cache-control: no-store" in head
    assert body == b""


async def test_unknown_method_is_501_problem(edge_port: int) -> None:
    """`BREW` is no HTTP method this server knows: 501 (RFC 9110 §15.6.2), as problem+json."""
    answer = await exchange(edge_port, b"BREW /items HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_problem_answer(answer, 501, "not-implemented")


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /items HTTP/1.1\r\nHost x\r\n\r\n", b"GET /items HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"],
    ids=["header without colon", "bad version", "tls handshake"],
)
async def test_malformed_request_is_400_problem(edge_port: int, request_bytes: bytes) -> None:
    answer = await exchange(edge_port, request_bytes)
    assert_problem_answer(answer, 400, "bad-request")


async def wait_until_serving(stream: asyncio.StreamReader, workers: int) -> None:
    """Until the socket listens and every worker has started its app."""
    listening, started = False, 0
    while not (listening and started >= workers):
        line = await stream.readline()
        assert line, "the gateway exited before it was ready"
        listening = listening or b"Uvicorn running on" in line
        started += b"Application startup complete" in line


@pytest.mark.parametrize("workers", [1, 2])
async def test_process_takes_head_limits_from_the_environment(workers: int) -> None:
    """`python -m edge_gateway` with EDGE_HEADER_TIMEOUT_SECONDS and EDGE_MAX_HEADER_BYTES, also with
    worker processes (whose configuration crosses a process boundary)."""
    port = free_port()
    env: dict[str, Any] = {
        **os.environ,
        "AUCTION_JWT_SECRET": SECRET,
        "EDGE_PORT": str(port),
        "EDGE_BIDDER_TARGET": f"127.0.0.1:{free_port()}",
        "EDGE_HEADER_TIMEOUT_SECONDS": str(0.5 * TIME_UNIT),
        "EDGE_MAX_HEADER_BYTES": "2048",
        "EDGE_WORKERS": str(workers),
        "EDGE_SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_gateway", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(scaled(30)):
            await wait_until_serving(process.stderr, workers)
        assert (
            await exchange(port, HEALTHZ.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        ).startswith(b"HTTP/1.1 200 ")
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 3000 + b"\r\n\r\n"
        assert_problem_answer(await exchange(port, big), 431, "header-fields-too-large")
        started = time.monotonic()
        assert_problem_answer(await exchange(port, b"GET /he"), 408, "request-timeout")
        assert time.monotonic() - started < scaled(3)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(scaled(15)):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
