"""The chaos targets: which process of a running `devstack up` each one is, how it is SIGKILLed, and when
the stack counts as back.

Pids come from the supervisor's own `status.json` in the stack's state directory, so the kill comes from
outside, as a crash would, and the restart is the supervisor's (`devstack.supervisor`). PostgreSQL is
killed with every process it forked, frozen first so none of them notices the others dying (as when its
container is OOM-killed: backends left running would keep the shared memory the restart needs). An edge
worker is one of the edge's uvicorn worker processes, which uvicorn's own supervisor respawns; the edge's
main process is a target of its own (the supervisor kills its orphaned workers and restarts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack.server_base import process_tree, signal_tree, wait_stopped


@dataclass(frozen=True)
class Target:
    """`component` is the table's row; `process` its name in status.json."""

    component: str
    process: str
    tree: bool = False
    worker: bool = False


TARGETS = (
    Target("edge worker", "edge", worker=True),
    Target("edge main", "edge"),
    Target("bidder", "bidder"),
    Target("redis", "redis"),
    Target("fanout", "fanout"),
    Target("relay", "relay"),
    Target("nats", "nats"),
    Target("archiver", "archiver"),
    Target("postgres", "postgres", tree=True),
)


def status(state: Path) -> dict[str, dict[str, Any]]:
    """Each process's entry in the supervisor's `status.json`."""
    processes: dict[str, dict[str, Any]] = json.loads((state / "status.json").read_text())["processes"]
    return processes


def restarts(state: Path) -> dict[str, int]:
    return {name: int(entry["restarts"]) for name, entry in status(state).items()}


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def edge_workers(edge_pid: int) -> set[int]:
    """The uvicorn workers of the edge's main process (spawned children; not its resource tracker)."""
    found = set()
    for pid in process_tree(edge_pid)[1:]:
        with contextlib.suppress(OSError):
            line = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in line and _parent(pid) == edge_pid:
                found.add(pid)
    return found


@dataclass
class Kill:
    """One SIGKILL: what was killed, when, and what the supervisor had counted before."""

    target: Target
    at: float  # time.monotonic()
    pid: int
    victims: list[int]
    workers_before: set[int]
    restarts_before: dict[str, int]


def kill(state: Path, target: Target) -> Kill:
    """SIGKILL `target` now (see the module docstring for how each kind is killed)."""
    pid = int(status(state)[target.process]["pid"])
    workers = edge_workers(pid) if target.process == "edge" else set()
    before = restarts(state)
    if target.worker:
        victims = [min(workers)]
        os.kill(victims[0], signal.SIGKILL)
    elif target.tree:
        victims = signal_tree(pid, signal.SIGSTOP)
        for member in victims:
            wait_stopped(member)
        signal_tree(pid, signal.SIGKILL)
    else:
        victims = [pid]
        os.kill(pid, signal.SIGKILL)
    return Kill(target, time.monotonic(), pid, victims, workers, before)


def _replaced(state: Path, done: Kill) -> bool:
    entries = status(state)
    if not all(entry["state"] == "running" and entry["pid"] for entry in entries.values()):
        return False
    pid = entries[done.target.process]["pid"]
    if done.target.worker:
        workers = edge_workers(pid)
        return pid == done.pid and len(workers) >= len(done.workers_before) and workers != done.workers_before
    return bool(pid != done.pid)


async def wait_back(state: Path, done: Kill, edge_url: str, within: float) -> float:
    """Wait until the killed process is replaced, everything runs and the edge is ready; when (monotonic)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError, httpx.HTTPError):
                if _replaced(state, done) and (await client.get(f"{edge_url}/readyz")).status_code == 200:
                    return time.monotonic()
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{done.target.component} not back within {within:.0f} s: {status(state)}")


def restarts_since(state: Path, done: Kill) -> dict[str, int]:
    """Restarts per process since the kill (an edge worker respawned by uvicorn counts for the edge)."""
    now = restarts(state)
    counted = {name: now[name] - done.restarts_before.get(name, 0) for name in now}
    if done.target.worker:
        counted["edge"] = counted.get("edge", 0) + 1
    return {name: count for name, count in counted.items() if count}
