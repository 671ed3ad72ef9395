"""Per-bidder notices end to end: the bidder's bids and closes, the relay's notices, the fan-out's `/ws/me`.

Every bidder name is fresh per test (the session's Redis may still hold other modules' outbox entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time

import jwt
import pytest
from websockets.typing import Subprotocol

from auction import AuctionClient
from auction.notices import AuctionExtended, NoticeAuthError, Outbid, watch_notices
from tests.conftest import scaled
from tests.notice_fixtures import NoticeStack, NoticeViewer, notice_stack

__all__ = ["notice_stack"]


def fresh(*names: str) -> list[str]:
    tag = secrets.token_hex(3)
    return [f"{name}-{tag}" for name in names]


async def _refused(viewer: NoticeViewer) -> tuple[int | None, str, list[str]]:
    code = await viewer.wait_closed()
    errors = [m["code"] for m in viewer.messages if m.get("type") == "error"]
    return code, viewer.close_reason, errors


async def test_no_token_is_closed_with_4401_after_an_error_and_subscribes_nothing(
    notice_stack: NoticeStack,
) -> None:
    """Silence past the auth timeout, or a first message that is not `auth`: error message, then 4401."""
    silent = await notice_stack.raw_viewer()
    code, reason, errors = await _refused(silent)
    assert (code, errors) == (4401, ["unauthorized"])
    assert "no token" in reason
    chatty = await notice_stack.raw_viewer()
    await chatty.ws.send('{"type": "hello"}')
    code, reason, errors = await _refused(chatty)
    assert (code, errors) == (4401, ["unauthorized"])
    assert "first message" in reason


@pytest.mark.parametrize("how", ["header", "message"])
async def test_bad_and_expired_tokens_are_refused_and_change_nothing(
    notice_stack: NoticeStack, how: str
) -> None:
    """A token signed with another secret, an expired one, one living too long, one with a bad role:
    4401 with the reason, and no subscription was made for the bidder."""
    [ann] = fresh("ann")
    now = int(time.time())
    cases = {
        "the token is not valid": jwt.encode({"sub": ann, "role": "bidder", "exp": now + 60}, "x" * 32),
        "the token has expired": notice_stack.token(ann, ttl_seconds=-10),
        "lives longer": jwt.encode(
            {"sub": ann, "role": "bidder", "iat": now, "exp": now + 10 * 86400}, notice_stack.secret
        ),
        "role is not known": jwt.encode({"sub": ann, "role": "root", "exp": now + 60}, notice_stack.secret),
        "is not valid": "not-a-jwt",
    }
    for expected, token in cases.items():
        if how == "header":
            viewer = await notice_stack.raw_viewer(subprotocols=[Subprotocol("bearer"), Subprotocol(token)])
        else:
            viewer = await notice_stack.raw_viewer()
            await viewer.ws.send(f'{{"type": "auth", "token": "{token}"}}')
        code, reason, errors = await _refused(viewer)
        assert (code, errors) == (4401, ["unauthorized"]), expected
        assert expected in reason
    assert await notice_stack.subscribers(ann) == 0


async def test_a_connection_is_closed_when_its_token_expires(notice_stack: NoticeStack) -> None:
    """Accepted, then closed with 4401 when `exp` passes (and the subscription goes with it)."""
    [ann] = fresh("ann")
    viewer = await notice_stack.viewer(token=notice_stack.token(ann, ttl_seconds=2))
    code, reason, errors = await _refused(viewer)
    assert (code, reason, errors) == (4401, "the token has expired", ["unauthorized"])
    await notice_stack.wait_subscribers(ann, 0)


async def test_a_token_in_the_url_is_refused_at_the_handshake(notice_stack: NoticeStack) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        await NoticeViewer.open(f"{notice_stack.me_url}?token={notice_stack.token('ann')}")
    assert refused.value.response.status_code == 400


async def test_the_previous_leader_is_told_when_outbid_and_nobody_else_hears_it(
    notice_stack: NoticeStack,
) -> None:
    """alice leads, bob outbids her: alice gets `outbid` with the new price and minimum; bob (the new
    leader) and carol (no bid) get nothing; alice raising her own bid does not notify her."""
    alice, bob, carol = fresh("alice", "bob", "carol")
    alice_ws, bob_ws, carol_ws = [await notice_stack.viewer(b) for b in (alice, bob, carol)]
    item = await notice_stack.create_item()
    await notice_stack.bid(item, alice, 100)
    await notice_stack.bid(item, alice, 110)  # raising her own lead: no notice
    seq = await notice_stack.bid(item, bob, 150)
    [notice] = await alice_ws.wait_notices(1)
    assert notice == {
        "type": "outbid", "item_id": item, "seq": seq, "current_price": 150, "min_next_bid": 160,
        "currency": "USD",
    }  # fmt: skip
    assert all("server_time" in m for m in alice_ws.messages)
    # A later notice to bob proves the earlier ones had their chance to arrive: there were none.
    await notice_stack.bid(item, carol, 200)
    [to_bob] = await bob_ws.wait_notices(1)
    assert to_bob["type"] == "outbid"
    assert to_bob["current_price"] == 200
    assert len(alice_ws.notices) == 1
    assert carol_ws.notices == []


async def test_the_close_tells_the_winner_won_and_every_other_bidder_lost(notice_stack: NoticeStack) -> None:
    alice, bob, dave = fresh("alice", "bob", "dave")
    alice_ws, bob_ws, dave_ws = [await notice_stack.viewer(b) for b in (alice, bob, dave)]
    item = await notice_stack.create_item(ends_in=3.0)
    await notice_stack.bid(item, alice, 100)
    await notice_stack.bid(item, bob, 110)
    won = await bob_ws.wait_notices(1, within=30)
    assert [(n["type"], n["item_id"], n["final_price"]) for n in won] == [("won", item, 110)]
    notices = await alice_ws.wait_notices(2, within=30)
    assert [n["type"] for n in notices] == ["outbid", "lost"]
    assert notices[1]["final_price"] == 110
    assert dave_ws.notices == []  # never bid on it


async def test_an_extension_is_sent_to_every_bidder_of_the_item(notice_stack: NoticeStack) -> None:
    """Every bid inside the window moves the end: each bidder of the item by then hears `extended`."""
    alice, bob, erin = fresh("alice", "bob", "erin")
    alice_ws, bob_ws, erin_ws = [await notice_stack.viewer(b) for b in (alice, bob, erin)]
    item = await notice_stack.create_item(ends_in=600, soft_close=(3600, 1200))
    other = await notice_stack.create_item()
    await notice_stack.bid(other, erin, 100)  # erin bids elsewhere only
    await notice_stack.bid(item, alice, 100)
    [first] = await alice_ws.wait_notices(1)
    assert first["type"] == "extended"
    assert first["item_id"] == item
    await notice_stack.bid(item, bob, 110)
    kinds = {n["type"] for n in await alice_ws.wait_notices(3)}
    assert kinds == {"extended", "outbid"}
    [to_bob] = await bob_ws.wait_notices(1)
    assert to_bob["type"] == "extended"
    assert to_bob["ends_at"] > first["ends_at"]
    await notice_stack.bid(other, alice, 110)  # erin is outbid on her item: her only notice
    [to_erin] = await erin_ws.wait_notices(1)
    assert (to_erin["type"], to_erin["item_id"]) == ("outbid", other)


async def test_two_connections_of_one_bidder_share_one_subscription(notice_stack: NoticeStack) -> None:
    alice, bob = fresh("alice", "bob")
    first, second = await notice_stack.viewer(alice), await notice_stack.viewer(alice)
    assert await notice_stack.subscribers(alice) == 1
    item = await notice_stack.create_item()
    await notice_stack.bid(item, alice, 100)
    await notice_stack.bid(item, bob, 110)
    assert [n["type"] for n in await first.wait_notices(1)] == ["outbid"]
    assert [n["type"] for n in await second.wait_notices(1)] == ["outbid"]
    await first.close()
    await second.close()
    await notice_stack.wait_subscribers(alice, 0)


@pytest.mark.parametrize("auth", ["header", "message"])
async def test_sdk_watch_notices_yields_typed_notices(notice_stack: NoticeStack, auth: str) -> None:
    alice, bob = fresh("alice", "bob")
    item = await notice_stack.create_item(ends_in=30, soft_close=(7200, 600))
    async with watch_notices(notice_stack.token(alice), notice_stack.base_url, auth=auth) as stream:
        received = []

        async def collect() -> None:
            async for notice in stream:
                received.append(notice)
                if len(received) == 2:
                    return

        task = asyncio.create_task(collect())
        async with asyncio.timeout(scaled(20)):
            await stream.ready.wait()
        assert stream.bidder == alice
        await notice_stack.bid(item, alice, 100)  # extends (window covers the whole auction)
        await notice_stack.bid(item, bob, 110)  # outbids alice, then extends again
        await asyncio.wait_for(task, timeout=scaled(20))
    assert isinstance(received[0], AuctionExtended)
    assert any(isinstance(n, Outbid) and n.current_price == 110 and n.min_next_bid == 120 for n in received)


async def test_sdk_watch_notices_with_a_bad_token_raises(notice_stack: NoticeStack) -> None:
    stream = watch_notices(notice_stack.token("ann", ttl_seconds=-5), notice_stack.base_url, max_attempts=3)

    async def drain() -> None:
        async for _ in stream:
            pass

    with pytest.raises(NoticeAuthError, match="expired"):
        await asyncio.wait_for(drain(), timeout=scaled(20))


async def test_cli_notices_prints_each_notice(notice_stack: NoticeStack) -> None:
    """`auction notices` as a subprocess: connected (the bidder's channel has its subscriber), a bid
    outbids the bidder, one line is printed and it exits 0; a refused token is exit code 5."""
    alice, bob = fresh("alice", "bob")
    item = await notice_stack.create_item()
    env = {**os.environ, "AUCTION_TOKEN": notice_stack.token(alice)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", "notices", "--ws-url", notice_stack.base_url, "--count", "1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        await notice_stack.wait_subscribers(alice, 1, within=30)
        await notice_stack.bid(item, alice, 100)
        await notice_stack.bid(item, bob, 130)
        out, err = await asyncio.wait_for(process.communicate(), timeout=scaled(30))
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    assert process.returncode == 0, err
    assert out.decode() == f"outbid on {item}: now 1.30 USD; bid at least 1.40 USD to lead again\n"
    refused = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "auction.cli", "--token", "garbage", "notices",
        "--ws-url", notice_stack.base_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(refused.communicate(), timeout=scaled(30))
    assert refused.returncode == 5
    assert b"token refused" in err
    assert b"Traceback" not in err


async def test_the_blocking_client_iterates_notices_too(notice_stack: NoticeStack) -> None:
    """`AuctionClient.watch_notices` (the SDK's blocking face) yields the same typed notices."""
    alice, bob = fresh("alice", "bob")
    item = await notice_stack.create_item()

    def first_notice() -> object:
        with AuctionClient("http://127.0.0.1:9", token=notice_stack.token(alice)) as client:
            for notice in client.watch_notices(notice_stack.base_url):
                return notice
        return None

    waiting = asyncio.create_task(asyncio.to_thread(first_notice))
    await notice_stack.wait_subscribers(alice, 1, within=30)
    await notice_stack.bid(item, alice, 100)
    await notice_stack.bid(item, bob, 120)
    notice = await asyncio.wait_for(waiting, timeout=scaled(30))
    assert notice == Outbid(item, 3, 120, 130, "USD")
    await notice_stack.wait_subscribers(alice, 0)  # leaving the loop closed the connection
