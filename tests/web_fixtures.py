"""The web page's browser tests: Debian's Chromium driven by Playwright for Python, one browser per session.

The browser is `/usr/bin/chromium` (installed by `make setup` through `deploy/install-browser.sh`), given
to Playwright as `executable_path`: Playwright never downloads a build of its own. Each test takes a fresh
context (its own storage, so its own signed-in bidder), in UTC and en-US so times and numbers read the
same on every machine. Waiting is Playwright's: `expect(...)` retries until the page shows what is
expected or the (scaled, generous) timeout passes; a failing page leaves a screenshot behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.conftest import scaled
from tests.platform_fixtures import Platform

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
FAILURES = Path(tempfile.gettempdir()) / "auction-web-failures"
TOKEN_KEY = "auction.token"  # web/session.js
EXPECT_MS = scaled(15) * 1000
# The viewer's clock an hour behind the platform's: the countdown must not care (server_time).
SKEWED_CLOCK = "(() => { const real = Date.now.bind(Date); Date.now = () => real() - 3600000; })();"

expect.set_options(timeout=EXPECT_MS)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the session (fresh contexts per test keep the tests apart)."""
    if not HAVE_CHROMIUM:
        reason = f"{CHROMIUM} is missing: `make setup` installs it (deploy/install-browser.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, timeout=scaled(60) * 1000
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def open_page(
    browser: Browser,
    url: str,
    *,
    token: str | None = None,
    init_script: str | None = None,
    name: str = "page",
    phone: bool = False,
) -> AsyncIterator[Page]:
    """A page in a fresh context at `url` (desktop or `phone` width), signed in with `token` if given;
    a screenshot is kept when the test fails inside."""
    viewport: ViewportSize = {"width": 390, "height": 844} if phone else {"width": 1000, "height": 900}
    context = await browser.new_context(locale="en-US", timezone_id="UTC", viewport=viewport, is_mobile=phone)
    context.set_default_timeout(EXPECT_MS)
    if token is not None:
        # Only when nothing is kept yet, so signing out or in on the page sticks across navigations.
        key, value = json.dumps(TOKEN_KEY), json.dumps(token)
        await context.add_init_script(
            f"if (!localStorage.getItem({key})) localStorage.setItem({key}, {value});"
        )
    if init_script is not None:
        await context.add_init_script(init_script)
    page = await context.new_page()
    # Uncaught script errors and anything the page's policy refused fail the test: the page must run
    # clean under its own Content-Security-Policy (expected network failures are only logged).
    broken: list[str] = []
    page.on("pageerror", lambda error: broken.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: broken.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        await page.goto(url)
        yield page
        assert not broken, broken
    except BaseException:
        FAILURES.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            await page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
        raise
    finally:
        await context.close()


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    """`docs/screenshots/<name>.png`, shown in the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def in_seconds(seconds: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(seconds=seconds))


@dataclass
class Rest:
    """The platform's REST API, as the tests' other bidders and admins use it."""

    platform: Platform
    client: httpx.AsyncClient

    async def create_item(self, title: str, *, ends_in: float = 3600, **extra: Any) -> dict[str, Any]:
        body = {
            "title": title, "description": f"{title}, as the browser tests create it.", "currency": "USD",
            "starting_price": 1000, "min_increment": 100, "ends_at": in_seconds(ends_in), **extra,
        }  # fmt: skip
        answer = await self.client.post(
            f"{self.platform.edge_url}/items", json=body, headers=self.platform.auth("root", "admin")
        )
        assert answer.status_code == 201, answer.text
        item: dict[str, Any] = answer.json()
        return item

    async def bid(self, item_id: str, bidder: str, amount: int) -> dict[str, Any]:
        answer = await self.client.post(
            f"{self.platform.edge_url}/items/{item_id}/bid",
            json={"amount": amount},
            headers=self.platform.auth(bidder),
        )
        assert answer.status_code == 201, answer.text
        placed: dict[str, Any] = answer.json()
        return placed

    async def item(self, item_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.client.get(f"{self.platform.edge_url}/items/{item_id}")).json()
        return found


@pytest_asyncio.fixture(loop_scope="session")
async def rest(platform: Platform) -> AsyncIterator[Rest]:
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(30)) as client:
        yield Rest(platform, client)
