"""Lean WebSocket viewers for the fan-out benchmark, run in worker processes.

A general client (websockets' own, the SDK) spends more CPU per message than the server does per
viewer, and on a 2-core machine that would measure the clients. These are bare non-blocking sockets
read from uvloop's reader callbacks: a hand-written handshake, a frame parser that reads only what it
needs (opcode, length, the `seq` of each event), pongs for the server's pings, and two times for every
event, both on the system-wide monotonic clock the benchmark also uses for acceptance times: when the
frame reached the viewer's socket (the kernel's receive timestamp) and when this process read it. On
one shared machine the second includes the wait for this process's turn on a core behind thousands of
other viewers; on a real deployment each viewer reads on its own device.

Each viewer checks its own stream as it goes: every event must carry the next `seq` after the previous
one; anything else counts as a gap (dropped) or a repeat/reorder.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import socket
import struct
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import uvloop

# Linux's SO_TIMESTAMPNS (also the SCM type of its control message); the socket module lacks the name.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
_READ_SIZE = 65536
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)
_SEQ = b'"seq":'
_BATCH = b'{"type":"batch"'
_SNAPSHOT = b'{"type":"snapshot"'
MAX_OPEN_FILES = 20_000


@dataclass
class Tally:
    """What one worker process saw, over all its viewers."""

    connected: int = 0
    failed: int = 0
    closed: int = 0
    snapshots: int = 0
    gaps: int = 0
    repeats: int = 0
    # Per seq, when each viewer's process read the event, and when it reached the viewer's socket.
    arrivals: dict[int, array[float]] = field(default_factory=dict)
    socket_arrivals: dict[int, array[float]] = field(default_factory=dict)
    last_seqs: list[int] = field(default_factory=list)
    # CLOCK_REALTIME minus CLOCK_MONOTONIC: kernel timestamps are wall-clock, the benchmark's monotonic.
    realtime_offset: float = field(default_factory=lambda: time.time() - time.monotonic())

    def arrived(self, seq: int, read: float, reached: float) -> None:
        times = self.arrivals.get(seq)
        if times is None:
            times = self.arrivals[seq] = array("d")
            self.socket_arrivals[seq] = array("d")
        times.append(read)
        self.socket_arrivals[seq].append(reached)


class LeanViewer:
    """One viewer on a raw non-blocking socket, read with `recvmsg` from the event loop's reader callback.

    Each read also returns the kernel's receive timestamp (SO_TIMESTAMPNS): the moment the frame reached
    the viewer's socket, before this process got round to reading it. Both times are kept.
    """

    def __init__(
        self, sock: socket.socket, request: bytes, tally: Tally, ready: asyncio.Future[None]
    ) -> None:
        self.sock = sock
        self._request = request
        self._tally = tally
        self._ready = ready
        self._buffer = b""
        self._open = False
        self._closed = False
        self.last_seq = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.send(self._request)
        loop.add_reader(self.sock.fileno(), self._readable, loop)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._closed:
            self._closed = True
            loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            data, ancillary, _flags, _address = self.sock.recvmsg(_READ_SIZE, _ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        now = time.monotonic()
        if not data:
            self.close(loop)
            self._tally.closed += 1
            if not self._ready.done():
                self._ready.set_exception(ConnectionError("closed during the handshake"))
            return
        stamp = now
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                stamp = seconds + nanoseconds / 1e9 - self._tally.realtime_offset
        self._received(data, now, stamp, loop)

    def _received(self, data: bytes, now: float, stamp: float, loop: asyncio.AbstractEventLoop) -> None:
        buf = self._buffer + data if self._buffer else data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._ready.set_exception(ConnectionError(buf[:40].decode(errors="replace")))
                self.close(loop)
                return
            self._open = True
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b1, b2 = buf[pos], buf[pos + 1]
            length, head = b2 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if size - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            opcode = b1 & 0x0F
            if opcode == 1:
                self._message(payload, now, stamp)
            elif opcode == 9:  # ping: answer with a pong (client frames are masked; a zero mask is valid)
                self.sock.send(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
        self._buffer = buf[pos:]

    def _message(self, payload: bytes, now: float, stamp: float) -> None:
        if payload.startswith(_BATCH):
            for event in orjson.loads(payload)["events"]:
                self._event(int(event["seq"]), now, stamp)
        elif payload.startswith(_SNAPSHOT):
            self.last_seq = int(orjson.loads(payload)["seq"])
            self._tally.snapshots += 1
            if not self._ready.done():
                self._ready.set_result(None)
        else:
            start = payload.find(_SEQ) + len(_SEQ)
            end = payload.find(b",", start)
            self._event(int(payload[start:end]), now, stamp)

    def _event(self, seq: int, now: float, stamp: float) -> None:
        last = self.last_seq
        if seq == last + 1:
            self.last_seq = seq
            self._tally.arrived(seq, now, stamp)
        elif seq > last + 1:
            self._tally.gaps += seq - last - 1
            self.last_seq = seq
            self._tally.arrived(seq, now, stamp)
        else:
            self._tally.repeats += 1


def _request(host: str, port: int, item_id: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws/items/{item_id} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def lower_priority(niceness: int) -> None:
    """Run this process at `niceness`, in its own scheduling group.

    With autogroup scheduling (Linux's default on desktops and here) CPU is shared fairly between
    sessions first and by nice value only within one, and every devstack service runs in a session of
    its own: a nice viewer process in the benchmark's session would still take a session's full share.
    So the worker starts a session (its own autogroup) and gives that group the same niceness.
    """
    os.setsid()
    with contextlib.suppress(OSError):  # no autogroup support: the plain nice value still applies
        Path("/proc/self/autogroup").write_text(str(niceness))
    os.nice(niceness)


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, MAX_OPEN_FILES) if hard != resource.RLIM_INFINITY else MAX_OPEN_FILES
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


async def open_viewers(
    host: str, port: int, item_id: str, count: int, tally: Tally, parallel: int
) -> list[LeanViewer]:
    loop = asyncio.get_running_loop()
    viewers: list[LeanViewer] = []
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            viewer = LeanViewer(sock, _request(host, port, item_id), tally, ready)
            try:
                await loop.sock_connect(sock, (host, port))
                viewer.start(loop)
                await asyncio.wait_for(ready, 30)
            except (OSError, TimeoutError, ConnectionError):
                viewer.close(loop)
                tally.failed += 1
                return
            tally.connected += 1
            viewers.append(viewer)

    await asyncio.gather(*(one() for _ in range(count)))
    return viewers


def worker(
    pipe: Connection, host: str, port: int, item_ids: list[str], count: int, niceness: int = 0
) -> None:
    """Worker process: open `count` viewers spread evenly over `item_ids`, say ("ready", connected,
    failed), record until told "report", then send {item_id: Tally} (seqs are per item)."""
    raise_file_limit()
    if niceness:
        lower_priority(niceness)

    async def run() -> None:
        tallies = {item_id: Tally() for item_id in item_ids}
        each, extra = divmod(count, len(item_ids))
        shares = [each + (1 if i < extra else 0) for i in range(len(item_ids))]
        parallel = max(1, 100 // len(item_ids))
        groups = await asyncio.gather(
            *(
                open_viewers(host, port, item_id, share, tallies[item_id], parallel=parallel)
                for item_id, share in zip(item_ids, shares, strict=True)
            )
        )
        counts = list(tallies.values())
        pipe.send(("ready", sum(t.connected for t in counts), sum(t.failed for t in counts)))
        loop = asyncio.get_running_loop()
        command: Any = await loop.run_in_executor(None, pipe.recv)
        assert command == "report"
        for item_id, viewers in zip(item_ids, groups, strict=True):
            tallies[item_id].last_seqs = [v.last_seq for v in viewers]
            for viewer in viewers:
                viewer.close(loop)
        pipe.send(tallies)

    uvloop.run(run())
