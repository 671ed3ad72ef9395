"""`auction watch` in a real terminal (a pty): it redraws the price as bids arrive through the fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import sys
import time

from tests.conftest import scaled
from tests.fanout_fixtures import FanoutStack, fanout_stack

__all__ = ["fanout_stack"]


async def read_pty(master: int, sink: bytearray, done: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not done.is_set():
        try:
            chunk = await loop.run_in_executor(None, _read, master)
        except OSError:
            return  # the child closed the terminal
        if not chunk:
            return
        sink.extend(chunk)


def _read(master: int) -> bytes:
    return os.read(master, 65536)


async def test_watch_redraws_price_and_last_bids_in_a_terminal(fanout_stack: FanoutStack) -> None:
    """Three bids arrive: the screen is redrawn in place each time and ends with the last price."""
    item_id = await fanout_stack.create_item(starting_price=100, min_increment=10)
    master, slave = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", "watch", item_id, "--ws-url", fanout_stack.base_url,
        "--count", "3", stdin=slave, stdout=slave, stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "30"},
    )  # fmt: skip
    os.close(slave)
    output = bytearray()
    done = asyncio.Event()
    reader = asyncio.create_task(read_pty(master, output, done))
    try:
        deadline = time.monotonic() + scaled(20)
        while b"Lamp" not in output:  # the first snapshot is on screen: the viewer is connected
            assert time.monotonic() < deadline, bytes(output)
            await asyncio.sleep(0.05)
        for _ in range(3):
            assert await fanout_stack.bid(item_id, 1)
        assert await asyncio.wait_for(process.wait(), timeout=scaled(20)) == 0
    finally:
        done.set()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        os.close(master)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    screen = output.decode(errors="replace")
    assert screen.count("\x1b[H\x1b[2J") >= 4  # snapshot + three bids, each a full redraw
    last = screen.rsplit("\x1b[H\x1b[2J", 1)[1]
    assert "price    1.20 USD  by alice" in last
    assert "bids 3" in last
    assert last.count("alice") >= 3


async def test_watch_json_lines_and_unknown_item(fanout_stack: FanoutStack) -> None:
    """Piped with --json: one JSON object per event; an unknown item is exit code 4."""
    item_id = await fanout_stack.create_item()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", "--json", "watch", item_id, "--ws-url", fanout_stack.base_url,
        "--count", "1", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), timeout=scaled(20))
    assert b'"type":"snapshot"' in first
    await fanout_stack.bid(item_id, 1)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=scaled(20))
    assert process.returncode == 0
    assert b'"type":"BidPlaced"' in out
    missing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", "watch", "no-such-item", "--ws-url", fanout_stack.base_url,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(missing.communicate(), timeout=scaled(20))
    assert missing.returncode == 4
    assert b"Traceback" not in err
