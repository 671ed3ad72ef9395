"""`devstack up` restarts what dies: SIGKILL the relay, then Redis, under a stack of this module's own.

The stack is `python -m devstack up` on free ports with its own state directory (not the session's
`platform`, which other modules share: these tests kill its processes). Which process has which pid comes
from the stack's own `status.json`, which the supervisor keeps. Checked: bids keep being accepted through
the edge while the relay is gone, the relay comes back on its own and archives what was accepted meanwhile;
Redis comes back on its AOF with the item created before the kill, which accepts bids again once the bidder
has reconnected; nothing else was restarted; a killed edge leaves no worker holding its port; SIGINT still
stops everything, and nothing is restarted then.
First, on a tiny real service that dies a second after each start, the supervisor's crash-loop report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as redis_asyncio

from devstack.ports import free_port
from devstack.processes import ServiceProcess, http_ok
from devstack.restart_policy import RestartPolicy
from devstack.servers import PostgresServer
from devstack.summary import READY_MARKER
from devstack.supervisor import Supervisor
from devstack.tokens import mint_token
from tests.conftest import scaled

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Up:
    """The running `devstack up`: its process, its log, where the edge is and how to sign tokens."""

    process: asyncio.subprocess.Process
    state: Path
    log_path: Path
    edge_url: str
    secret: str = ""
    items: list[str] = field(default_factory=list)

    def auth(self, sub: str, role: str = "bidder") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.secret, sub, role, 3600)}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        """Each process's entry in `status.json`."""
        processes: dict[str, Any] = json.loads((self.state / "status.json").read_text())["processes"]
        return processes

    def pid(self, name: str) -> int:
        pid = self.status()[name]["pid"]
        assert isinstance(pid, int), self.status()[name]
        return pid


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AUCTION_JWT_SECRET", "AUCTION_SERVICE_TOKEN")}
    paths = [str(REPO / "deploy"), str(REPO), str(REPO / "clients")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


async def _eventually(what: str, check: Any, within: float, every: float = 0.2) -> Any:
    """Poll the async `check` until it returns something true; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(every)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in {"Z", "X"}


_SHORT_LIVED = """
import http.server, os, threading

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

threading.Timer(float(os.environ["FAKE_LIFETIME"]), os._exit, (3,)).start()
http.server.HTTPServer(("127.0.0.1", int(os.environ["FAKE_PORT"])), Handler).serve_forever()
"""


async def test_a_crash_loop_is_reported_loudly_and_retried_until_closed(tmp_path: Path) -> None:
    """A service that keeps dying is restarted with backoff on its port, called a crash loop on the terminal
    and in status.json once it passes the limit, and no longer restarted after `close()`."""
    (tmp_path / "short_lived_service.py").write_text(_SHORT_LIVED)
    port = free_port()
    env = {"PYTHONPATH": str(tmp_path), "FAKE_PORT": str(port), "FAKE_LIFETIME": str(scaled(1.0))}
    service = ServiceProcess(
        "shorty", "short_lived_service", env, http_ok(f"http://127.0.0.1:{port}/"),
        start_timeout=scaled(30), stop_grace=scaled(5), log_path=tmp_path / "shorty.log",
    )  # fmt: skip
    lines: list[str] = []
    policy = RestartPolicy(initial_delay=0.05, max_delay=0.2, crash_loop_restarts=2, crash_loop_window=60)
    status_path = tmp_path / "status.json"
    supervisor = Supervisor(lines.append, asyncio.Event(), policy=policy, status_path=status_path)
    await service.start()
    try:
        supervisor.watch(service)

        async def looping() -> bool:
            entry = json.loads(status_path.read_text())["processes"]["shorty"]
            return bool(entry["crash_loop"])

        await _eventually("the crash loop is reported", looping, scaled(30), every=0.05)
        await supervisor.close()
        assert not status_path.exists()
    finally:
        await service.stop()
    deaths = [line for line in lines if "shorty exited unexpectedly (exit status 3)" in line]
    assert len(deaths) >= 3, lines
    assert "restarting in 0.05 s (restart 1)" in deaths[0]
    assert "restarting in 0.1 s (restart 2)" in deaths[1]
    assert any(line.startswith("ERROR: shorty is crash-looping: 3 restarts within 60 s") for line in lines)
    assert sum("shorty restarted (pid" in line for line in lines) >= 2


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def up(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Up]:
    state = tmp_path_factory.mktemp("supervised")
    edge_port, fanout_port = free_port(), free_port()
    log_path = state / "up.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack", "up", "--state-dir", str(state),
            "--edge-port", str(edge_port), "--fanout-port", str(fanout_port),
            cwd=REPO, env=_env(), stdin=asyncio.subprocess.DEVNULL, stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    stack = Up(process, state, log_path, f"http://127.0.0.1:{edge_port}")
    try:

        async def announced() -> bool:
            assert process.returncode is None, "devstack up exited early:\n" + stack.log()[-4000:]
            return READY_MARKER in stack.log()

        await _eventually("devstack up is ready", announced, scaled(120), every=0.3)
        stack.secret = (state / "jwt-secret").read_text().strip()
        yield stack
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=scaled(60))
            except TimeoutError:
                process.kill()  # its children die with it (PR_SET_DEATHSIG)
                await process.wait()
        PostgresServer(state / "postgres").remove_cluster()


async def _new_item(client: httpx.AsyncClient, up: Up) -> str:
    ends_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {
        "title": "Kept lot",
        "currency": "USD",
        "starting_price": 100,
        "min_increment": 10,
        "ends_at": ends_at,
    }
    created = await client.post(f"{up.edge_url}/items", json=body, headers=up.auth("admin", "admin"))
    assert created.status_code == 201, created.text
    item_id: str = created.json()["id"]
    return item_id


async def _bid(client: httpx.AsyncClient, up: Up, item_id: str, bidder: str) -> httpx.Response:
    """The minimum next bid, one Idempotency-Key for it (or the refused read of the item)."""
    read = await client.get(f"{up.edge_url}/items/{item_id}")
    if read.status_code != 200:
        return read
    item = read.json()
    headers = {**up.auth(bidder), "Idempotency-Key": uuid.uuid4().hex}
    return await client.post(
        f"{up.edge_url}/items/{item_id}/bid", json={"amount": item["min_next_bid"]}, headers=headers
    )


async def _archived_seqs(client: httpx.AsyncClient, up: Up, item_id: str) -> set[int]:
    page = await client.get(f"{up.edge_url}/items/{item_id}/bids", params={"limit": 200})
    return {bid["seq"] for bid in page.json().get("bids", [])} if page.status_code == 200 else set()


async def _back(up: Up, name: str, old_pid: int) -> None:
    """Wait until the supervisor says `name` runs again, as a new process."""

    async def restarted() -> bool:
        entry = up.status()[name]
        running = entry["state"] == "running" and entry["pid"] not in (None, old_pid)
        return bool(running and f"{name} restarted (pid {entry['pid']}, restart " in up.log())

    await _eventually(f"{name} restarted, in status.json and on the terminal", restarted, scaled(60))


async def test_a_killed_relay_comes_back_and_archives_the_bids_accepted_meanwhile(up: Up) -> None:
    """SIGKILL the relay: bids are still accepted through the edge, the relay is restarted alone, and the
    bids accepted while it was gone reach the archive."""
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(10)) as client:
        item_id = await _new_item(client, up)
        before = await _bid(client, up, item_id, "alice")
        assert before.status_code == 201, before.text
        pids = {name: entry["pid"] for name, entry in up.status().items()}
        relay = pids["relay"]

        os.kill(relay, signal.SIGKILL)

        async def noticed() -> bool:
            return bool(up.status()["relay"]["state"] != "running")

        await _eventually("the supervisor noticed the relay's death", noticed, scaled(10), every=0.02)
        assert _gone(relay)
        accepted, while_away = [before.json()["seq"]], 0
        for turn in range(1000):
            response = await _bid(client, up, item_id, ("bob", "alice")[turn % 2])
            assert response.status_code == 201, response.text
            accepted.append(response.json()["seq"])
            if up.status()["relay"]["state"] != "running":
                while_away += 1
            else:
                break
        assert while_away >= 1, "no bid was placed while the relay was away"
        await _back(up, "relay", relay)
        log = up.log()
        assert "relay exited unexpectedly (killed by SIGKILL, exit status -9)" in log
        assert "restarting in 0.5 s (restart 1)" in log

        async def all_archived() -> bool:
            return set(accepted) <= await _archived_seqs(client, up, item_id)

        await _eventually("every accepted bid is archived", all_archived, scaled(30))
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack", "status", "--state-dir", str(up.state),
        cwd=REPO, env=_env(), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    table = (await asyncio.wait_for(shown.communicate(), scaled(30)))[0].decode()
    assert shown.returncode == 0, table
    relay_row = next(line for line in table.splitlines() if line.startswith("relay "))
    assert relay_row.split()[1:4] == ["running", str(up.pid("relay")), "1"], table
    assert "exited unexpectedly (killed by SIGKILL, exit status -9) at " in relay_row
    others = {name: entry for name, entry in up.status().items() if name != "relay"}
    assert all(entry["restarts"] == 0 for entry in others.values()), others
    assert {name: entry["pid"] for name, entry in others.items()} == {
        name: pid for name, pid in pids.items() if name != "relay"
    }


async def test_a_killed_redis_comes_back_on_its_data_and_takes_bids_again(up: Up) -> None:
    """SIGKILL Redis: it is restarted on its AOF and port, the item created before is still there, and it
    accepts bids again once the bidder has reconnected; those bids are archived too."""
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(10)) as client:
        item_id = await _new_item(client, up)
        first = await _bid(client, up, item_id, "carol")
        assert first.status_code == 201, first.text
        redis = up.pid("redis")
        redis_url = json.loads((up.state / "endpoints.json").read_text())["redis"]

        os.kill(redis, signal.SIGKILL)
        await _back(up, "redis", redis)
        assert "redis exited unexpectedly (killed by SIGKILL, exit status -9)" in up.log()
        async with redis_asyncio.Redis.from_url(redis_url) as again:  # the same port as before
            assert await again.ping()

        async def item_there() -> dict[str, Any] | None:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{up.edge_url}/items/{item_id}")
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
            return None

        item = await _eventually("the item is served again", item_there, scaled(30))
        assert item["bid_count"] == 1
        assert item["highest_bidder"] == "carol"

        async def accepted_again() -> int | None:
            with contextlib.suppress(httpx.HTTPError):
                response = await _bid(client, up, item_id, "dave")
                if response.status_code == 201:
                    seq: int = response.json()["seq"]
                    return seq
                assert response.status_code in (502, 503, 504), response.text
            return None

        second = await _eventually("a bid is accepted after the restart", accepted_again, scaled(30))
        seqs = {first.json()["seq"], second}

        async def both_archived() -> bool:
            return seqs <= await _archived_seqs(client, up, item_id)

        await _eventually("both bids are archived", both_archived, scaled(30))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


async def test_a_killed_edge_leaves_no_worker_behind_and_serves_again(up: Up) -> None:
    """SIGKILL the edge's main process alone: its orphaned workers, which hold the port, are killed, and
    the new edge serves on the same port."""
    edge = up.pid("edge")
    workers = _children(edge)
    assert workers, "the edge runs worker processes (EDGE_WORKERS > 1)"
    os.kill(edge, signal.SIGKILL)
    await _back(up, "edge", edge)
    assert all(_gone(pid) for pid in workers)
    refused: list[str] = []
    async with httpx.AsyncClient(trust_env=False, timeout=scaled(10)) as client:
        item_id = await _new_item(client, up)

        async def accepted() -> bool:
            # The edge is ready once one worker answers /readyz; the other may still be warming up.
            response = await _bid(client, up, item_id, "erin")
            if response.status_code != 201:
                refused.append(f"{response.status_code} {response.text[:200]}")
            return response.status_code == 201

        try:
            await _eventually("a bid through the new edge", accepted, scaled(20))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; refused meanwhile: {refused}") from None


async def test_sigint_still_stops_everything_and_restarts_nothing(up: Up) -> None:
    """A process that dies while the stack stops is not restarted; `up` exits 0 and leaves no process."""
    pids = [entry["pid"] for entry in up.status().values() if entry["pid"]]
    os.kill(up.pid("fanout-2"), signal.SIGKILL)
    up.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(up.process.wait(), timeout=scaled(60)) == 0
    after_signal = up.log().split("SIGINT received: stopping", 1)[1]
    assert "fanout-2 restarted" not in after_signal
    assert " restarted (pid" not in after_signal
    assert all(_gone(pid) for pid in pids)
    assert not (up.state / "status.json").exists()
