"""The web page in a real browser (headless Chromium) against the platform as `make up` runs it.

Two bidders' pages on one item; refusals in words; one bid per intent whatever the network does; the
countdown on the platform's clock moved by an extension; the close and its winner; a fan-out process
killed under an open page; being outbid, on the item page and in the notice list; the item list and the
admin page. The tests also write the README's screenshots (`docs/screenshots/`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import jwt
import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect

from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.services import edge_process
from devstack.services_fanout import fanout_process
from devstack.tokens import SECRET_ENV, SERVICE_TOKEN_ENV, local_service_token
from tests.conftest import scaled, service_sink
from tests.platform_fixtures import Platform, platform
from tests.web_fixtures import SKEWED_CLOCK, Rest, browser, in_seconds, open_page, rest, screenshot

__all__ = ["browser", "platform", "rest"]


def item_url(platform: Platform, item_id: str) -> str:
    return f"{platform.edge_url}/app/item.html?id={item_id}"


async def live(page: Page) -> None:
    """The feed is connected and its snapshot applied: what happens from now on arrives as events."""
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("body")).to_have_attribute("data-feed-seq", re.compile(r"^\d+$"))


async def seqs_shown(page: Page) -> list[int]:
    seqs: list[int] = await page.locator("#events li").evaluate_all(
        "els => els.map(e => Number(e.dataset.seq))"
    )
    return seqs


async def test_a_bid_through_the_form_shows_on_another_bidders_page_within_a_second(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Alice double-clicks Bid: one bid, and Bob's page shows its price and the bid within 1 s."""
    item = await rest.create_item("Brass telescope")
    url = item_url(platform, item["id"])
    async with (
        open_page(browser, url, token=platform.token("alice"), name="two-alice") as alice,
        open_page(browser, url, token=platform.token("bob"), name="two-bob") as bob,
    ):
        await live(alice)
        await live(bob)
        await expect(alice.locator("#amount")).to_have_value("10.00")
        await alice.locator("#bid-button").dblclick()
        await expect(alice.locator("#bid-message")).to_have_attribute("data-state", "accepted")
        # A double click's second click that comes after the first one's answer is the same press still
        # (a submit would have set "pending" synchronously, inside the dispatch).
        await alice.locator("#bid-button").dispatch_event("click", {"detail": 2})
        assert await alice.locator("#bid-message").get_attribute("data-state") == "accepted"
        await expect(bob.locator("#price")).to_have_text("10.00 USD")
        first = bob.locator("#events li").first
        await expect(first.locator(".what")).to_have_text("alice bid 10.00 USD")
        answered = int(await alice.locator("#bid-message").get_attribute("data-answered-at") or 0)
        shown = int(await first.get_attribute("data-applied-at") or 0)
        assert shown - answered < 1000, (
            f"Bob's page showed the bid {shown - answered} ms after it was accepted"
        )
        await expect(bob.locator("#leader")).to_have_text("alice")
        assert (await rest.item(item["id"]))["bid_count"] == 1  # the double click placed one bid
        await expect(alice.locator("#you")).to_have_attribute("data-state", "leading")
        for bidder, amount in (("carol", 1200), ("dave", 1500), ("carol", 1800)):
            await rest.bid(item["id"], bidder, amount)
        await expect(bob.locator("#events li")).to_have_count(4)
        await expect(bob.locator("#bid-count")).to_have_text("4")
        await screenshot(bob, "item-live")


async def test_a_too_low_bid_shows_the_minimum_and_every_refusal_is_in_words(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Too low (with the minimum), not open, signed out, rate limited (with the wait) and closed."""
    item = await rest.create_item("Pocket watch")
    await rest.bid(item["id"], "erin", 1000)
    async with open_page(browser, item_url(platform, item["id"]), token=platform.token("alice")) as page:
        await live(page)
        message = page.locator("#bid-message")
        await page.locator("#amount").fill("5")
        await page.locator("#amount").press("Enter")  # the keyboard is enough
        await expect(message).to_have_text("Too low: the minimum bid is now 11.00 USD.")
        await expect(page.locator("#amount")).to_have_value("11.00")

        async def answer(
            route: Route, status: int, problem: dict[str, object], headers: dict[str, str]
        ) -> None:
            await route.fulfill(
                status=status,
                body=json.dumps(problem),
                content_type="application/problem+json",
                headers=headers,
            )

        limited = {
            "type": "rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "retry in 7 s",
        }
        await page.route("**/bid", lambda route: answer(route, 429, limited, {"Retry-After": "7"}))
        await page.locator("#bid-button").click()
        await expect(message).to_have_text("Too many bids in a short time: wait 7 s, then bid again.")
        await expect(page.locator("#bid-button")).to_be_disabled()
        closed = {
            "type": "auction-closed",
            "title": "The auction has ended",
            "status": 409,
            "detail": "ended",
        }
        await page.unroute("**/bid")
        await page.route("**/bid", lambda route: answer(route, 409, closed, {}))
        await page.evaluate("() => document.querySelector('#bid-form').requestSubmit()")
        await expect(message).to_have_text("Too late: this auction has ended, so it takes no more bids.")
        await page.unroute("**/bid")

        forged = jwt.encode(
            {"sub": "alice", "role": "bidder", "exp": int(time.time()) + 600}, "x" * 40, "HS256"
        )
        await page.evaluate("token => localStorage.setItem('auction.token', token)", forged)
        await page.evaluate("() => document.querySelector('#bid-form').requestSubmit()")
        await expect(message).to_have_text(
            re.compile(r"^You are signed out \(your token is missing, expired")
        )
        await expect(page.locator("#token-input")).to_be_visible()  # the page offers to sign in again
        await page.evaluate("() => document.querySelector('#bid-form').requestSubmit()")
        await expect(message).to_have_text("You are signed out: sign in above to bid.")

    later = await rest.create_item("Opera glasses", starts_at=in_seconds(3600), ends_in=7200)
    async with open_page(browser, item_url(platform, later["id"]), token=platform.token("alice")) as page:
        await live(page)
        await expect(page.locator("#countdown-label")).to_have_text("Opens in")
        await page.locator("#bid-button").click()
        await expect(page.locator("#bid-message")).to_have_text(
            re.compile(r"^Not open yet: bidding starts at ")
        )


async def test_a_bid_whose_answer_was_lost_is_retried_with_its_key_and_placed_once(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """The first answer never reaches the page; its retry carries the same Idempotency-Key: one bid."""
    item = await rest.create_item("Silver locket")
    keys: list[str] = []

    async def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            await route.fetch()  # the platform takes the bid...
            await route.abort("connectionreset")  # ...and its answer is lost on the way back
        else:
            await route.continue_()

    async with open_page(browser, item_url(platform, item["id"]), token=platform.token("alice")) as page:
        await live(page)
        await page.route("**/bid", lose_the_first_answer)
        await page.locator("#bid-button").click()
        await expect(page.locator("#bid-message")).to_have_text("Bid placed: 10.00 USD.")
        await expect(page.locator("#bid-count")).to_have_text("1")
    assert len(keys) == 2, keys
    assert keys[0] == keys[1], keys
    assert (await rest.item(item["id"]))["bid_count"] == 1


async def test_an_extension_moves_the_countdown_on_the_platforms_clock(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """The viewer's clock is an hour behind, yet the countdown is right (server_time), and a late bid's
    extension moves it as it happens."""
    rule = {"window_seconds": 60, "extension_seconds": 300, "max_ends_at": None}
    item = await rest.create_item("Ship in a bottle", ends_in=45, soft_close=rule)
    async with open_page(
        browser, item_url(platform, item["id"]), token=platform.token("alice"), init_script=SKEWED_CLOCK
    ) as page:
        await live(page)
        countdown = page.locator("#countdown")
        await expect(countdown).to_have_text(re.compile(r"^0:[0-4]\d$"))
        await rest.bid(item["id"], "gina", 1000)
        await expect(page.locator("#events li .what").first).to_have_text(
            re.compile(r"^Extended: now ends at .* \(\+")
        )
        await expect(page.locator("#events li").first).to_have_attribute("data-type", "extended")
        await expect(countdown).to_have_text(re.compile(r"^[45]:\d\d$"))


async def test_the_close_shows_the_winner(browser: Browser, platform: Platform, rest: Rest) -> None:
    """Bid through the form, then the close arrives live: result, winner, price, and no more bidding; at
    phone width, with nothing wider than the screen."""
    item = await rest.create_item("Carriage clock", ends_in=8)
    url = item_url(platform, item["id"])
    async with open_page(browser, url, token=platform.token("frank"), phone=True, name="close") as page:
        await live(page)
        await page.locator("#bid-button").click()
        await expect(page.locator("#bid-message")).to_have_text("Bid placed: 10.00 USD.")
        await expect(page.locator("#result-text")).to_have_text("Sold to frank for 10.00 USD.")
        await expect(page.locator("#you")).to_have_text("You won this auction at 10.00 USD.")
        await expect(page.locator("#countdown")).to_have_text("ended")
        await expect(page.locator("#events li .what").first).to_have_text(
            "Closed: sold to frank for 10.00 USD"
        )
        await expect(page.locator("#bid-button")).to_be_disabled()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "finished")
        assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        await screenshot(page, "item-closed")


async def test_a_maximum_bids_for_its_owner_who_alone_is_told_of_it(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Grace bids 10.00 with a maximum of 25.00: her page says she leads up to it; Heidi's bid of 15.00
    is answered by Grace's automatic bid of 16.00, shown as such on both pages, and no page but Grace's
    ever shows 25.00; Heidi's 30.00 beats the maximum and Grace's page says she is outbid."""
    item = await rest.create_item("Barometer")
    url = item_url(platform, item["id"])
    async with (
        open_page(browser, url, token=platform.token("grace"), name="max-grace") as grace,
        open_page(browser, url, token=platform.token("heidi"), name="max-heidi") as heidi,
    ):
        await live(grace)
        await live(heidi)
        await grace.locator("#max-amount").fill("25")
        await grace.locator("#bid-button").click()
        await expect(grace.locator("#bid-message")).to_have_text(
            "Bid placed: you lead at 10.00 USD; the platform bids for you up to 25.00 USD."
        )
        you = grace.locator("#you")
        await expect(you).to_have_text("You are the highest bidder, up to your maximum of 25.00 USD.")

        placed = await rest.bid(item["id"], "heidi", 1500)
        assert placed["leading"] is False
        assert 2500 not in placed["item"].values()  # the maximum is Grace's alone
        for page in (grace, heidi):
            await expect(page.locator("#price")).to_have_text("16.00 USD")
            await expect(page.locator("#leader")).to_have_text("grace")
            await expect(page.locator("#events li .what").first).to_have_text(
                "grace bid 16.00 USD (automatic, within their maximum)"
            )
        await expect(you).to_have_text("You are the highest bidder, up to your maximum of 25.00 USD.")
        await screenshot(grace, "item-maximum")
        assert "25.00" not in await heidi.locator("body").inner_text()

        await heidi.locator("#amount").fill("30")
        await heidi.locator("#bid-button").click()
        await expect(heidi.locator("#bid-message")).to_have_text("Bid placed: 30.00 USD.")
        await expect(you).to_have_text(re.compile(r"^Outbid: heidi leads at 30\.00 USD\."))
        assert "25.00" not in await heidi.locator("body").inner_text()


async def test_buy_now_closes_the_item_for_the_first_buyer_and_goes_with_the_first_bid(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Ivan buys at the buy-now price: sold to him at once, and Judy's page loses the offer and shows the
    result; on another item the first bid takes the offer off every page."""
    item = await rest.create_item("Ship in a bottle", buy_now_price=5000)
    url = item_url(platform, item["id"])
    async with (
        open_page(browser, url, token=platform.token("ivan"), name="buy-ivan") as ivan,
        open_page(browser, url, token=platform.token("judy"), name="buy-judy") as judy,
    ):
        await live(ivan)
        await live(judy)
        for page in (ivan, judy):
            await expect(page.locator("#buy-button")).to_have_text("Buy now for 50.00 USD")
        await screenshot(judy, "item-buy-now")
        await ivan.locator("#buy-button").click()
        await expect(ivan.locator("#buy-message")).to_have_text("Bought: the item is yours for 50.00 USD.")
        for page in (ivan, judy):
            await expect(page.locator("#result-text")).to_have_text("Sold to ivan for 50.00 USD.")
        await expect(ivan.locator("#you")).to_have_text("You won this auction at 50.00 USD.")
        await expect(judy.locator("#buy-now")).to_be_hidden()
        assert (await rest.item(item["id"]))["status"] == "closed"

    other = await rest.create_item("Snow globe", buy_now_price=5000)
    async with open_page(browser, item_url(platform, other["id"]), token=platform.token("judy")) as page:
        await live(page)
        await expect(page.locator("#buy-now")).to_be_visible()
        await rest.bid(other["id"], "ivan", 1000)
        await expect(page.locator("#buy-now")).to_be_hidden()
        await expect(page.locator("#price")).to_have_text("10.00 USD")


@dataclass
class OwnLivePath:
    """An edge and a fan-out of our own beside the platform's (same bidder and Redis), so the test may
    kill the fan-out without `devstack up` taking the whole platform down with it."""

    edge_url: str
    fanout: ServiceProcess
    start_fanout: Callable[[], Awaitable[ServiceProcess]]


@asynccontextmanager
async def own_live_path(platform: Platform) -> AsyncIterator[OwnLivePath]:
    endpoints = json.loads((platform.state / "endpoints.json").read_text())
    edge_port, fanout_port = free_port(), free_port()
    edge_url = f"http://127.0.0.1:{edge_port}"
    shared = {SERVICE_TOKEN_ENV: local_service_token(platform.secret)}
    edge = edge_process(
        endpoints["bidder"], edge_port, platform.secret, sink=service_sink(), name="web-edge",
        extra_env={**shared, "EDGE_WORKERS": "1", "EDGE_FANOUT_PUBLIC_URL": f"ws://127.0.0.1:{fanout_port}"},
    )  # fmt: skip
    edge.start_timeout = scaled(30)
    fanout_env = {**shared, SECRET_ENV: platform.secret, "FANOUT_ALLOWED_ORIGINS": edge_url}
    processes = [edge]

    async def start_fanout() -> ServiceProcess:
        process = fanout_process(
            endpoints["redis"], endpoints["bidder"], fanout_port, sink=service_sink(),
            name=f"web-fanout-{len(processes)}", extra_env=fanout_env,
        )  # fmt: skip
        process.start_timeout = scaled(30)
        processes.append(process)
        await process.start()
        return process

    try:
        await edge.start()
        yield OwnLivePath(edge_url, await start_fanout(), start_fanout)
    finally:
        for process in reversed(processes):
            await process.stop()


async def test_a_killed_fanout_process_the_page_reconnects_and_shows_every_event_once_in_order(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """SIGKILL the fan-out under an open page, bid on, start a new one: the page says it lost the feed,
    resumes with `since`, and ends with every bid once, in order, with the right count and price."""
    item = await rest.create_item("Music box")
    async with own_live_path(platform) as own:
        url = f"{own.edge_url}/app/item.html?id={item['id']}"
        async with open_page(browser, url, name="reconnect") as page:
            await live(page)
            connection = page.locator("#connection")
            seqs = [(await rest.bid(item["id"], "hana", 1000 + 100 * n))["seq"] for n in range(3)]
            await expect(page.locator("#events li")).to_have_count(3)
            own.fanout.kill()
            await expect(connection).to_have_attribute("data-state", "reconnecting")
            await expect(connection).to_have_text(re.compile(r"^Connection lost: reconnecting"))
            seqs += [(await rest.bid(item["id"], "ivan", 1300 + 100 * n))["seq"] for n in range(3)]
            await own.start_fanout()
            seqs += [(await rest.bid(item["id"], "hana", 1600 + 100 * n))["seq"] for n in range(2)]
            await expect(page.locator("#events li")).to_have_count(8)
            # What came while it was down is marked: the three bids at least (the page may come back
            # after the next two too, its backoff running on).
            await expect(connection).to_have_text(
                re.compile(r"^Live again: caught up with [345] missed events\.$")
            )
            missed = await page.locator("#events li[data-missed='true']").evaluate_all(
                "els => els.map(e => Number(e.dataset.seq))"
            )
            assert set(seqs[3:6]) <= set(missed) <= set(seqs[3:])
            await expect(page.locator("#bid-count")).to_have_text("8")  # no event applied twice
            await expect(page.locator("#price")).to_have_text("17.00 USD")
            assert seqs == list(range(seqs[0], seqs[0] + 8))
            assert await seqs_shown(page) == seqs[::-1]  # newest first, each once
            assert int(await connection.get_attribute("data-connects") or 0) >= 2


async def test_outbid_through_the_api_shows_on_the_item_page(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Alice leads through the form; Bob outbids her through the REST API; her page says so."""
    item = await rest.create_item("Tin soldier")
    async with open_page(browser, item_url(platform, item["id"]), token=platform.token("alice")) as page:
        await live(page)
        await page.locator("#bid-button").click()
        await expect(page.locator("#you")).to_have_text("You are the highest bidder.")
        await rest.bid(item["id"], "bob", 1500)
        you = page.locator("#you")
        await expect(you).to_have_attribute("data-state", "outbid")
        await expect(you).to_have_text(
            "Outbid: bob leads at 15.00 USD. Bid at least 16.00 USD to lead again."
        )


async def test_outbid_through_the_api_shows_in_the_notice_list(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """The same, in the notice list fed by the fan-out's `/ws/me` (skipped while the fan-out has none)."""
    probe_url = platform.fanout_url.replace("ws://", "http://", 1) + "/ws/me"
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(10)) as client:
        status = (await client.get(probe_url)).status_code
    if status in (404, 503):
        pytest.skip(f"the fan-out has no per-bidder notices yet (GET /ws/me answered {status})")
    item = await rest.create_item("Wooden horse")
    async with open_page(browser, item_url(platform, item["id"]), token=platform.token("alice")) as page:
        await live(page)
        await expect(page.locator("#notice-status")).to_have_attribute("data-state", "live")
        await page.locator("#bid-button").click()
        await expect(page.locator("#you")).to_have_attribute("data-state", "leading")
        await rest.bid(item["id"], "bob", 1500)
        notice = page.locator("#notice-list li[data-type='outbid']").first
        await expect(notice).to_have_text("Wooden horse Outbid: now 15.00 USD; bid at least 16.00 USD.")


async def find_card(page: Page, item_id: str) -> Locator:
    """The item's card in the list, paging on with "More items" (other tests' items share the list)."""
    card = page.locator(f"#items li[data-id='{item_id}']")
    for _ in range(50):
        await expect(page.locator("#list-message")).to_have_attribute("data-state", "loaded")
        if await card.count():
            return card
        more = page.locator("#more")
        if not await more.is_visible():
            break
        await more.click()
    raise AssertionError(f"item {item_id} is not in the list")


async def test_the_item_list_filters_by_status_and_links_to_the_live_page(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """Each item's price and time left; the status filter; a link to the item's live page."""
    watched = await rest.create_item("Gramophone", ends_in=5400)
    await rest.bid(watched["id"], "jack", 2500)
    for title in ("Rocking chair", "Oil lamp"):
        await rest.create_item(title)
    later = await rest.create_item("Cuckoo clock", starts_at=in_seconds(3600), ends_in=7200)
    async with open_page(browser, f"{platform.edge_url}/app/?status=open", name="list") as page:
        card = await find_card(page, watched["id"])
        await expect(card.locator(".price")).to_have_text("25.00 USD")
        await expect(card.locator(".left")).to_have_text(re.compile(r"^1:(29|30):\d\d left$"))
        await screenshot(page, "list", full_page=False)
        await page.locator("#status").select_option("scheduled")
        card = await find_card(page, later["id"])
        await expect(card.locator(".left")).to_have_text(re.compile(r"^opens in (59:\d\d|1:00:00)$"))
        statuses = await page.locator("#items li").evaluate_all("els => els.map(e => e.dataset.status)")
        assert set(statuses) == {"scheduled"}
        await card.get_by_role("link").click()
        await expect(page.locator("#title")).to_have_text("Cuckoo clock")


async def test_an_admin_signs_in_with_a_development_token_and_creates_an_item(
    browser: Browser, platform: Platform, rest: Rest
) -> None:
    """The local stack's token endpoint from the page, then the admin form with reserve and soft close."""
    async with open_page(browser, f"{platform.edge_url}/app/admin.html", name="admin") as page:
        await page.get_by_text("Sign in", exact=True).click()
        await page.get_by_label("Name", exact=True).fill("root")
        await page.get_by_label("Role", exact=True).select_option("admin")
        await page.get_by_role("button", name="Get a development token").click()
        await expect(page.locator("#who-name")).to_have_text("root")
        await page.get_by_label("Title", exact=True).fill("Porcelain doll")
        await page.get_by_label("Starting price", exact=True).fill("5")
        await page.get_by_label("Minimum increment", exact=True).fill("0.50")
        await page.get_by_label("Reserve price (optional, hidden from bidders)").fill("20")
        await page.get_by_label("A late bid extends the auction").check()
        await page.get_by_role("button", name="Create the item").click()
        link = page.locator("#create-message a")
        await expect(link).to_have_text("Porcelain doll")
        item_id = (await link.get_attribute("href") or "").partition("id=")[2]
        answer = await rest.client.get(
            f"{platform.edge_url}/items/{item_id}", headers=platform.auth("root", "admin")
        )
        created = answer.json()
        assert (created["starting_price"], created["min_increment"], created["reserve_price"]) == (
            500,
            50,
            2000,
        )
        assert created["soft_close"] == {"window_seconds": 120, "extension_seconds": 120, "max_ends_at": None}
        await link.click()
        await expect(page.locator("#title")).to_have_text("Porcelain doll")
        await expect(page.locator("#amount")).to_have_value("5.00")


DECODER_CHECK = """async () => {
  const { FeedDecoder } = await import("./live.js");
  const decoder = new FeedDecoder();
  const seen = (result) => result.actions.map((a) => (a.kind === "event" ? a.event.seq : a.kind));
  const out = [];
  out.push(seen(decoder.decode({ type: "snapshot", seq: 5, item: { seq: 5 } })));
  out.push(seen(decoder.decode({ type: "batch", events: [5, 6, 7].map((seq) => ({ type: "bid", seq })) })));
  out.push(seen(decoder.decode({ type: "bid", seq: 7 })));
  const gap = decoder.decode({ type: "bid", seq: 9 });
  out.push([...seen(gap), gap.gap]);
  out.push(seen(decoder.decode({ type: "snapshot", seq: 3, item: { seq: 3 } })));
  out.push(seen(decoder.decode({ type: "reset" })));
  out.push(seen(decoder.decode({ type: "snapshot", seq: 4, item: { seq: 4 } })));
  out.push(seen(decoder.decode({ type: "closed", seq: 5 })));
  return { out, duplicates: decoder.duplicates, finished: decoder.finished, last: decoder.lastSeq };
}"""

MONEY_CHECK = """async () => {
  const { parseMoney, formatMoney } = await import("./money.js");
  const { formatRemaining } = await import("./clock.js");
  return [parseMoney("12.5", "USD"), parseMoney("12.505", "USD"), parseMoney("1,000", "JPY"),
    parseMoney("-1", "USD"), formatMoney(123456, "USD"), formatMoney(5, "KWD"),
    formatRemaining(75000), formatRemaining(3725000), formatRemaining(-5)];
}"""


async def test_the_pages_feed_decoder_and_money_rules(browser: Browser, platform: Platform) -> None:
    """Each seq applied once (older snapshots and repeats dropped), a jump reported as a gap to fill,
    a reset taking the next snapshot; money in exact minor units."""
    async with open_page(browser, f"{platform.edge_url}/app/", name="units") as page:
        decoded = await page.evaluate(DECODER_CHECK)
        money = await page.evaluate(MONEY_CHECK)
    assert decoded == {
        "out": [["snapshot"], [6, 7], [], [True], [], ["reset"], ["snapshot"], [5]],
        "duplicates": 2,
        "finished": True,
        "last": 5,
    }
    assert money == [1250, None, 1000, None, "1,234.56 USD", "0.005 KWD", "1:15", "1:02:05", "0:00"]
