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


async def test_ladder_buy_now_maximums_and_buying_end_to_end(lua_stack: RestStack) -> None:
    """`items create --increments --buy-now-price`, `items show` with both, `bid --max` (alone and with
    an amount), `buy`, and the refusals' exit codes; a maximum is printed only to the one who sent it."""
    admin, ann, bob = (lua_stack.token(sub, role) for sub, role in (("root", "admin"), ("ann", "bidder"),
                                                                    ("bob", "bidder")))  # fmt: skip
    create = ["items", "create", "--title", "Clock", "--currency", "USD", "--starting-price", "1000",
              "--ends-at", "2099-01-01T00:00:00Z", "--increments", "0:100,5000:500"]  # fmt: skip
    code, out, _ = await auction(lua_stack, "--json", *create, "--buy-now-price", "9000", token=admin)
    assert code == 0, out
    item = json.loads(out)
    assert item["increments"] == [{"from": 0, "increment": 100}, {"from": 5000, "increment": 500}]
    assert (item["min_increment"], item["buy_now_price"]) == (100, 9000)

    code, out, _ = await auction(lua_stack, "items", "show", item["id"])
    assert code == 0
    assert "increments    1.00 USD from 0.00 USD, 5.00 USD from 50.00 USD" in out
    assert f"buy now       90.00 USD (available: auction buy {item['id']})" in out

    code, out, _ = await auction(lua_stack, "bid", item["id"], "--max", "6789", token=ann)
    assert code == 0
    assert "of 10.00 USD" in out
    assert "you lead up to your maximum of 67.89 USD" in out
    code, out, _ = await auction(lua_stack, "bid", item["id"], "5000", "--max", "5500", token=bob)
    assert code == 0
    assert "outbid at once" in out
    assert "67.89" not in out
    assert "6789" not in out
    code, out, _ = await auction(lua_stack, "--json", "bid", item["id"], "--max", "9999", token=bob)
    assert code == 0
    placed = json.loads(out)
    assert (placed["leading"], placed["item"]["current_price"]) == (True, 7289)  # 6789 + the 500 there
    assert "9999" not in out

    code, _, err = await auction(lua_stack, "buy", item["id"], token=ann)
    assert (code, "buy-now-unavailable" in err) == (3, True)
    code, out, _ = await auction(lua_stack, "items", "show", item["id"])
    assert "buy now       90.00 USD (gone: the item has a bid)" in out

    code, out, _ = await auction(lua_stack, "--json", *create[:-2], "--min-increment", "50",
                                 "--buy-now-price", "3000", token=admin)  # fmt: skip
    assert code == 0
    other = json.loads(out)["id"]
    code, out, _ = await auction(lua_stack, "buy", other, token=bob)
    assert code == 0
    assert f"bought {other} for 30.00 USD (seq 2); the auction is closed" in out
    code, _, err = await auction(lua_stack, "buy", other, token=ann)
    assert (code, "auction-closed" in err) == (3, True)

    code, _, err = await auction(lua_stack, "bid", item["id"], "9000", "--max", "8000", token=ann)
    assert (code, "max_amount must be at least amount" in err) == (3, True)
    code, _, err = await auction(lua_stack, "bid", item["id"], token=ann)
    assert (code, "give AMOUNT, --max N or both" in err) == (2, True)
    code, _, err = await auction(lua_stack, *create[:-1], "0-100", token=admin)
    assert (code, "FROM:INCREMENT" in err) == (2, True)
    code, _, err = await auction(lua_stack, *create[:-2], token=admin)
    assert (code, "--min-increment" in err) == (2, True)
    code, _, err = await auction(lua_stack, *create[:-1], "10:100", token=admin)
    assert (code, "from = 0" in err) == (3, True)
