"""When `up` restarts a process that died, and when it calls that a crash loop: pure logic, no processes.

The delay before a restart doubles from `initial_delay` up to `max_delay` (0.5, 1, 2, 4, 8, 10, 10, ...
seconds), as Kubernetes' CrashLoopBackOff does, so a process that dies at once does not spin the two
cores, while one that dies now and then comes back within half a second. A run that lasted at least
`stable_after` seconds resets the delay: a crash after an hour of work is a new incident, not the next
step of an old one.

A crash loop is more than `crash_loop_restarts` restarts within `crash_loop_window` seconds. `up` then
says so loudly at every further restart, and keeps retrying at the capped delay rather than giving up:
- our services are built to wait for what they need (Redis, NATS, PostgreSQL, the bidder), so a process
  that keeps dying usually waits for something outside it (a server still recovering, a full disk, a
  port held by a leftover) that comes back by itself, and then the stack heals with nobody at the keys;
- `up` runs the code from the working tree, so a developer who fixes the bug behind the loop gets the
  fixed process at the next attempt, without restarting the whole stack (and every viewer's socket);
- a process given up would leave the rest running degraded with nothing left to notice; a loud line
  every `max_delay` seconds (and the state in `status.json`) cannot be missed, and costs one attempt per
  ten seconds.
"""

from __future__ import annotations

import collections
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """The backoff and crash-loop limits (seconds and counts); the defaults are what `up` uses."""

    initial_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 10.0
    stable_after: float = 30.0
    crash_loop_restarts: int = 5
    crash_loop_window: float = 120.0

    def __post_init__(self) -> None:
        if self.initial_delay <= 0 or self.factor < 1 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 < initial_delay <= max_delay and factor >= 1")
        if self.crash_loop_restarts < 1 or self.crash_loop_window <= 0:
            raise ValueError("need crash_loop_restarts >= 1 and crash_loop_window > 0")


@dataclass(frozen=True)
class RestartDecision:
    """What to do about one death: wait `delay` seconds, then restart (attempt number `attempt`)."""

    delay: float
    attempt: int
    """Restarts since the last stable run, this one included (1 for the first)."""
    recent: int
    """Restarts within the crash-loop window, this one included."""
    crash_loop: bool


class RestartTracker:
    """The restart history of one process; feed it each death (or failed restart) in order."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy if policy is not None else RestartPolicy()
        self._attempt = 0
        self._restarts: collections.deque[float] = collections.deque()

    def on_exit(self, now: float, uptime: float) -> RestartDecision:
        """The process died at `now` (monotonic seconds) after `uptime` seconds up (0: it never came up)."""
        policy = self.policy
        if uptime >= policy.stable_after:
            self._attempt = 0
        # Capping the exponent keeps the power finite however long a loop lasts.
        delay = min(policy.initial_delay * policy.factor ** min(self._attempt, 64), policy.max_delay)
        self._attempt += 1
        self._restarts.append(now)
        while self._restarts and self._restarts[0] <= now - policy.crash_loop_window:
            self._restarts.popleft()
        recent = len(self._restarts)
        return RestartDecision(delay, self._attempt, recent, recent > policy.crash_loop_restarts)


def describe_exit(status: int) -> str:
    """An exit status as people say it: `killed by SIGKILL, exit status -9`, `exit status 3`."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}, exit status {status}"
    return f"exit status {status}"
