"""The whole platform as `make up` runs it: `python -m devstack up` on free ports, once per test session.

Its own Redis, NATS and PostgreSQL, every service (the bidder with its closer, relay, archiver, edge,
two fan-out processes), the local service token: what users start, so tests against it test that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from devstack.ports import free_port
from devstack.tokens import mint_token
from tests.conftest import scaled

_POSTGRES = re.compile(r"postgres\s+(postgresql://\S+)")


@dataclass(frozen=True)
class Platform:
    edge_url: str
    fanout_url: str
    secret: str
    postgres_dsn: str
    state: Path

    def token(self, sub: str, role: str = "bidder") -> str:
        return mint_token(self.secret, sub, role, ttl_seconds=3600)

    def auth(self, sub: str, role: str = "bidder") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, role)}"}


async def _wait_ready(url: str, endpoints: Path, process: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.returncode is None, "devstack up exited early"
            with contextlib.suppress(httpx.HTTPError):
                announced = await asyncio.to_thread(endpoints.exists)
                if announced and (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url} not ready within {within:.0f} s")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    state = tmp_path_factory.mktemp("platform")
    edge_port, fanout_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AUCTION_JWT_SECRET", "AUCTION_SERVICE_TOKEN")}
    log_path = state / "up.log"
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack", "up", "--state-dir", str(state),
        "--edge-port", str(edge_port), "--fanout-port", str(fanout_port),
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    edge = f"http://127.0.0.1:{edge_port}"
    try:
        await _wait_ready(edge, state / "endpoints.json", process, scaled(120))
        endpoints = json.loads((state / "endpoints.json").read_text())
        found = _POSTGRES.search(log_path.read_text(errors="replace"))
        yield Platform(
            edge_url=edge,
            fanout_url=endpoints.get("fanout", f"ws://127.0.0.1:{fanout_port}"),
            secret=(state / "jwt-secret").read_text().strip(),
            postgres_dsn=found.group(1) if found else "",
            state=state,
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=scaled(60))
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
