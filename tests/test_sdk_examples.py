"""The README's examples run: two bidding bots fight until the lower limit gives up."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

from auction import AsyncAuctionClient
from tests.stack_fixtures import RestStack, lua_stack
from tests.test_sdk_rest import new_item

__all__ = ["lua_stack"]

EXAMPLES = Path(__file__).resolve().parents[1] / "clients" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_two_bots_end_with_the_higher_limit_leading(lua_stack: RestStack) -> None:
    """The bot with the higher limit ends on top, at no more than the other's limit plus one step."""
    bots = load("bidding_bot")
    item = await new_item(lua_stack)  # starts at 1000, +100 per bid
    await asyncio.gather(
        bots.bot(lua_stack.base_url, lua_stack.token("low"), "low", item.id, 2000, rounds=60),
        bots.bot(lua_stack.base_url, lua_stack.token("high"), "high", item.id, 3000, rounds=60),
    )
    async with AsyncAuctionClient(lua_stack.base_url) as client:
        final = await client.get_item(item.id)
    assert final.highest_bidder == "high"
    assert final.current_price is not None
    # The bots may both bid the same minimum (one is refused), so who bids which step varies: "high"
    # ends on 2000 (and "low" cannot top it) or on 2100 (topping low's 2000).
    assert 2000 <= final.current_price <= 2100
