"""The `auction` command line against the real stack: every command, --json, exit codes, errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import jwt

from tests.stack_fixtures import RestStack, lua_stack

__all__ = ["lua_stack"]


async def auction(stack: RestStack, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "AUCTION_URL": stack.base_url, "AUCTION_JWT_SECRET": stack.secret}
    env.pop("AUCTION_TOKEN", None)
    if token:
        env["AUCTION_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_token_items_bid_and_errors_end_to_end(lua_stack: RestStack) -> None:
    """Mint tokens, create, list and show items, bid, and get a helpful error and exit code per failure."""
    code, admin, _ = await auction(lua_stack, "token", "--sub", "root", "--role", "admin")
    assert code == 0
    assert jwt.decode(admin.strip(), lua_stack.secret, algorithms=["HS256"])["role"] == "admin"
    _, bidder, _ = await auction(lua_stack, "token", "--sub", "zoe")

    code, out, _ = await auction(
        lua_stack, "--json", "items", "create", "--title", "Globe", "--currency", "EUR",
        "--starting-price", "2500", "--min-increment", "50", "--ends-at", "2099-01-01T00:00:00Z",
        token=admin.strip(),
    )  # fmt: skip
    assert code == 0
    item = json.loads(out)
    assert (item["title"], item["min_next_bid"]) == ("Globe", 2500)

    code, out, _ = await auction(lua_stack, "items", "show", item["id"])
    assert code == 0
    assert "Globe" in out
    assert "25.00 EUR" in out

    code, out, _ = await auction(lua_stack, "--json", "items", "list", "--limit", "500")
    assert code == 0
    assert item["id"] in {i["id"] for i in json.loads(out)}

    code, out, _ = await auction(lua_stack, "bid", item["id"], "2500", token=bidder.strip())
    assert code == 0
    assert "accepted" in out
    assert "next minimum 25.50 EUR" in out

    code, _, err = await auction(lua_stack, "bid", item["id"], "2510", token=bidder.strip())
    assert code == 3
    assert "minimum next bid is 2550" in err

    code, out, _ = await auction(lua_stack, "--json", "bid", item["id"], "2510", token=bidder.strip())
    assert code == 3
    assert json.loads(out)["error"]["type"] == "bid-too-low"

    code, _, err = await auction(lua_stack, "items", "show", "nothing-here")
    assert code == 4
    assert "item-not-found" in err

    code, _, err = await auction(lua_stack, "bid", item["id"], "9000")
    assert code == 5
    assert "Traceback" not in err

    bad_time = ["--starting-price", "1", "--min-increment", "1", "--ends-at", "tomorrow"]
    code, _, err = await auction(lua_stack, "items", "create", "--title", "x", "--currency", "EUR", *bad_time)
    assert code == 2
    assert "RFC 3339" in err


async def test_unreachable_edge_is_exit_6(lua_stack: RestStack) -> None:
    """No server at the URL: a one-line error and exit code 6, after the retries."""
    dead = RestStack(lua_stack.strategy, "http://127.0.0.1:1", lua_stack.secret)
    code, _, err = await auction(dead, "items", "show", "anything")
    assert code == 6
    assert err.startswith("error:")
    assert "Traceback" not in err
