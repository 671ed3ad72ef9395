"""Keep every process `up` runs alive: restart what dies, with backoff, and say so.

One task per process waits for it to exit. Unless the stack is stopping, it prints what died, how and
when it comes back, waits the delay `RestartPolicy` gives (`devstack.restart_policy`, which also says
why a crash loop is retried at the cap rather than given up), and calls the process's `restart()`:
servers come back on their own ports and data (Redis replays its AOF, NATS its JetStream store,
PostgreSQL runs crash recovery), our services with the same environment and so on the same ports, so
nobody else has to learn a new address. A restart that fails (not ready in time, exited at once) counts
as one more death. Everything else keeps running meanwhile: each service already rides out the absence
of what it depends on.

The state of every process (running or restarting, crash loop or not, restarts, last exit) is kept in
`<state>/status.json`, rewritten on every change, so a crash loop is visible there as well as on the
terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from devstack.errors import StartError
from devstack.restart_policy import RestartDecision, RestartPolicy, RestartTracker, describe_exit

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class Restartable(Protocol):
    """What the supervisor needs from a server or a service."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    async def wait(self) -> int: ...

    async def restart(self) -> None: ...


@dataclass
class ProcessStatus:
    """One process's line in `status.json`."""

    state: str = "running"
    """`running`, or `restarting` (waiting out the delay, or starting again)."""
    crash_loop: bool = False
    """More restarts than the policy allows within its window, until it stays up `stable_after` seconds."""
    pid: int | None = None
    restarts: int = 0
    last_exit: str | None = None
    last_exit_at: str | None = None
    next_restart_in: float | None = None


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Supervisor:
    """Watches the processes handed to `watch()` until `close()`; `say` prints one line of ours."""

    def __init__(
        self,
        say: Callable[[str], None],
        stopping: asyncio.Event,
        *,
        policy: RestartPolicy | None = None,
        status_path: Path | None = None,
    ) -> None:
        self.say = say
        self.policy = policy if policy is not None else RestartPolicy()
        self.status_path = status_path
        self._stopping = stopping
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.status: dict[str, ProcessStatus] = {}

    def watch(self, process: Restartable) -> None:
        """Supervise `process`, already started and ready, from now until `close()`."""
        self.status[process.name] = ProcessStatus(pid=process.pid)
        self._write_status()
        self._tasks[process.name] = asyncio.create_task(
            self._supervise(process), name=f"supervise-{process.name}"
        )

    async def close(self) -> None:
        """Stop supervising (before the stack stops its processes, so that none of them is restarted)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.status_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.status_path.unlink()

    async def _supervise(self, process: Restartable) -> None:
        tracker = RestartTracker(self.policy)
        status = self.status[process.name]
        up_since = time.monotonic()
        while True:
            exit_status = await self._wait_recovering(process, status, up_since)
            if self._stopping.is_set():
                return
            what = f"exited unexpectedly ({describe_exit(exit_status)})"
            came_up = True
            while True:  # until a restart comes up
                now = time.monotonic()
                uptime = now - up_since if came_up else None  # a failed start never ran
                decision = tracker.on_exit(now, uptime or 0.0)
                self._died(process.name, status, what, decision, uptime)
                if not await self._wait_out(decision.delay):
                    return
                up_since = time.monotonic()
                try:
                    await process.restart()
                except Exception as exc:  # whatever went wrong, keep supervising: it is one more death
                    if self._stopping.is_set():
                        return
                    reason = exc.reason if isinstance(exc, StartError) else str(exc) or repr(exc)
                    what, came_up = f"did not come back ({reason})", False
                    continue
                break
            up_since = time.monotonic()
            status.pid = process.pid
            status.next_restart_in = None
            status.state = "running"
            self.say(f"{process.name} restarted (pid {process.pid}, restart {status.restarts}), ready again")
            self._write_status()

    async def _wait_recovering(self, process: Restartable, status: ProcessStatus, up_since: float) -> int:
        """Wait for `process` to exit; once it has stayed up `stable_after` seconds, clear a crash loop."""
        died = asyncio.ensure_future(process.wait())
        try:
            remaining = self.policy.stable_after - (time.monotonic() - up_since)
            done, _ = await asyncio.wait({died}, timeout=max(remaining, 0.0))
            if not done and status.crash_loop:
                status.crash_loop = False
                self._write_status()
                self.say(
                    f"{process.name} has stayed up {self.policy.stable_after:.0f} s: no longer crash-looping"
                )
            return await died
        finally:
            died.cancel()

    def _died(
        self, name: str, status: ProcessStatus, what: str, decision: RestartDecision, uptime: float | None
    ) -> None:
        """Record and print one death (`uptime`: how long it had run; None for a restart that failed)."""
        status.restarts += 1
        status.pid = None
        status.last_exit = what
        status.last_exit_at = _now_text()
        status.next_restart_in = decision.delay
        status.state = "restarting"
        status.crash_loop = decision.crash_loop
        self._write_status()
        self.say(
            f"{name} {what}{'' if uptime is None else f' after {uptime:.1f} s up'}; "
            f"restarting in {decision.delay:g} s (restart {status.restarts}); the rest keeps running"
        )
        if decision.crash_loop:
            policy = self.policy
            self.say(
                f"ERROR: {name} is crash-looping: {decision.recent} restarts within "
                f"{policy.crash_loop_window:.0f} s; still retrying every {policy.max_delay:g} s at most "
                f"until it stays up {policy.stable_after:.0f} s (see its log under logs/ in the state "
                "directory, and status.json)"
            )

    async def _wait_out(self, delay: float) -> bool:
        """Sleep `delay` seconds unless the stack starts stopping; True when the restart should go ahead."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        return not self._stopping.is_set()

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        document = {
            "devstack_pid": os.getpid(),
            "updated_at": _now_text(),
            "processes": {name: asdict(status) for name, status in self.status.items()},
        }
        tmp = self.status_path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            tmp.replace(self.status_path)
        except OSError as exc:  # a full disk must not stop the restarts themselves
            self.say(f"could not write {self.status_path}: {exc}")
