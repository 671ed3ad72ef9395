"""An idle relay waits in Redis (XREADGROUP BLOCK) rather than polling: it wakes when an entry is written.

With a poll interval of 30 s, an entry still reaches the archive within seconds, which only a relay that
blocks on the outbox can do (it fails against the polling relay). What it saves is measured, not tested
here: an idle relay took about 0.05 of a core polling every 10 ms, 0.002 blocking.
"""

from __future__ import annotations

import asyncio
import time

from tests.archive_fixtures import ArchiveStack, archive_stack
from tests.conftest import scaled

__all__ = ["archive_stack"]


async def test_an_idle_relay_wakes_on_the_next_entry_without_polling(archive_stack: ArchiveStack) -> None:
    archiver = archive_stack.archiver()
    await archiver.start()
    relay = archive_stack.relay({"RELAY_POLL_INTERVAL_SECONDS": "30"})
    await relay.start()
    try:
        await asyncio.sleep(2)  # idle: blocked in Redis by now
        [item_id] = await archive_stack.create_items(1)
        deadline = time.monotonic() + scaled(10)
        while item_id not in await archive_stack.items_archived([item_id]):
            assert time.monotonic() < deadline, "the relay did not wake on the new entry"
            await asyncio.sleep(0.1)
    finally:
        await relay.stop()
        await archiver.stop()
