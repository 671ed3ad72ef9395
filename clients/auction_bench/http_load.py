"""A lean HTTP/1.1 keep-alive load generator for bidding wars.

General clients (httpx, Locust) spend more CPU per request than the edge under test does, and on a
2-core machine that hides the server's ceiling. This one writes pre-built requests on raw asyncio
streams (uvloop) and parses only the status line, Content-Length and, for bids, `min_next_bid`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import orjson


@dataclass(slots=True)
class WorkerResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    # Every accepted bid, warm-up included, as (seq, amount): the correctness verdict's input.
    accepted: list[tuple[int, int]] = field(default_factory=list)
    # When each accepted bid's answer arrived (CLOCK_MONOTONIC, system-wide: comparable with the
    # arrival times other processes take with `time.monotonic()`), in the order of `accepted`.
    accepted_at: list[float] = field(default_factory=list)


class Connection:
    """One keep-alive connection; `request` sends bytes and returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        body = await self._reader.readexactly(length) if length else b""
        return status, body

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def bid_request(host: str, port: int, path: str, token: str, amount: int) -> bytes:
    body = b'{"amount":%d}' % amount
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def bidder_loop(
    host: str,
    port: int,
    path: str,
    token: str,
    start_amount: int,
    increment: int,
    deadline: float,
    measure_from: float,
    result: WorkerResult,
) -> None:
    """Bid like a person in a war: read `min_next_bid` from every answer and top it by a little."""
    conn = await Connection.open(host, port)
    next_amount = start_amount
    try:
        while (now := time.perf_counter()) < deadline:
            amount = next_amount + random.randrange(0, 3) * increment
            try:
                status, body = await conn.request(bid_request(host, port, path, token, amount))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                await conn.close()
                conn = await Connection.open(host, port)
                continue
            done = time.perf_counter()
            if now >= measure_from:
                result.latencies_ms.append((done - now) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
            if status in (201, 409) and body[:1] == b"{":
                accepted_at = time.monotonic() if status == 201 else None
                next_amount = _next_amount(body, next_amount, amount, increment, result, accepted_at)
    finally:
        await conn.close()


def _next_amount(
    body: bytes, fallback: int, sent: int, increment: int, result: WorkerResult, accepted_at: float | None
) -> int:
    """The amount to bid next; records the bid when it was accepted (`accepted_at` is not None)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return fallback
    if accepted_at is not None and "seq" in doc and "amount" in doc:
        result.accepted.append((int(doc["seq"]), int(doc["amount"])))
        result.accepted_at.append(accepted_at)
    if "min_next_bid" in doc:
        return int(doc["min_next_bid"])
    item = doc.get("item")
    if isinstance(item, dict) and "min_next_bid" in item:
        return int(item["min_next_bid"])
    return max(fallback, sent + increment)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]
