"""One child process with its output captured line by line.

Every process the stack runs (Redis, NATS, Postgres, initdb, our own services) goes through `ChildProcess`,
so all of them share the same guarantees:

- output (stdout and stderr merged) is appended to a log file and, optionally, handed line by line to a sink
  (`make up` prefixes each line with the service name), and the last lines are kept for error messages;
- readiness is the process's own log line, awaited with a timeout, never a sleep;
- the child runs in its own session (so a terminal's Ctrl-C reaches only `up`, which then stops children in
  order, and signals can go to the whole process group, e.g. Postgres and its backends), and it gets SIGKILL
  from the kernel when its parent dies (Linux `PR_SET_DEATHSIG`), so a crashed test run never leaks servers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, TextIO, TypeAlias

from devstack.errors import AddressInUseError, StartError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

LineSink: TypeAlias = Callable[[str, str], None]
"""Receives (process name, output line without newline); see `PrefixPrinter`."""


def discard(_name: str, _line: str) -> None:
    """The `LineSink` for a quiet run: nothing on the terminal (each process still has its log file)."""


_PR_SET_DEATHSIG = 1
_ADDRESS_IN_USE_MARKERS = ("address already in use",)
_LINE_LIMIT = 1 << 20
_EXIT_POLL_SECONDS = 0.25
_DRAIN_SECONDS = 1.0

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
except OSError:  # pragma: no cover - exotic libc
    _LIBC = None


def _death_signal_preexec(parent_pid: int) -> Callable[[], None]:
    """Build the preexec hook that ties the child's life to ours.

    It runs in the forked child after the uid/gid switch (a credential change would clear the setting), and
    closes the race where the parent died between fork and prctl by checking the parent pid.
    """

    def hook() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_DEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


class PrefixPrinter:
    """A line sink that writes `name | line` to a stream, names padded to one width, coloured on a tty.

    Without a stream it writes to whatever `sys.stdout` (or `sys.stderr`) is at the time of each line, which
    keeps it correct under pytest's output capturing.
    """

    _COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93")

    def __init__(self, stream: TextIO | None = None, width: int = 8, *, stderr: bool = False) -> None:
        self._stream = stream
        self._stderr = stderr
        self._width = width
        self._colours: dict[str, str] = {}

    def __call__(self, name: str, line: str) -> None:
        stream = self._stream or (sys.stderr if self._stderr else sys.stdout)
        label = name.ljust(self._width)
        if stream.isatty() and not os.environ.get("NO_COLOR"):
            colour = self._colours.setdefault(name, self._COLOURS[len(self._colours) % len(self._COLOURS)])
            label = f"\033[{colour}m{label}\033[0m"
        stream.write(f"{label} | {line}\n")
        stream.flush()


class ChildProcess:
    """One run of one OS process: spawn it, pump its output, signal it, reap it.

    An instance is single-use: a restart creates a new `ChildProcess` (the server classes do that).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        sink: LineSink | None = None,
        ready_text: str | None = None,
        user: int | None = None,
        group: int | None = None,
        tail_lines: int = 200,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._log_path = log_path
        self._sink = sink
        self._ready_text = ready_text
        self._user = user
        self._group = group
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._exit: asyncio.Task[int] | None = None
        self._ready = asyncio.Event()
        self.address_in_use = False

    @property
    def pid(self) -> int | None:
        """The process id once spawned."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else None."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True between spawn and reaping."""
        return self._proc is not None and self._proc.returncode is None

    def tail(self, count: int = 20) -> list[str]:
        """The last `count` output lines, for error messages."""
        return list(self._tail)[-count:]

    async def spawn(self) -> None:
        """Start the process and the task that pumps its output."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name}: a ChildProcess runs only once")
        log = self._open_log()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
                preexec_fn=_death_signal_preexec(os.getpid()),
                user=self._user,
                group=self._group,
                extra_groups=[] if self._user is not None else None,
                limit=_LINE_LIMIT,
            )
        except BaseException:
            if log is not None:
                log.close()
            raise
        self._pump = asyncio.create_task(self._pump_output(log), name=f"{self.name}-output")

    def _open_log(self) -> IO[bytes] | None:
        if self._log_path is None:
            return None
        log = self._log_path.open("ab", buffering=0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log.write(f"=== {stamp} start: {' '.join(self.argv)}\n".encode())
        return log

    async def _pump_output(self, log: IO[bytes] | None) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while True:
                try:
                    raw = await stdout.readline()
                except ValueError:  # a line longer than the limit: the reader dropped it
                    raw = b"<output line too long, dropped>\n"
                if not raw:
                    break
                if log is not None:
                    log.write(raw if raw.endswith(b"\n") else raw + b"\n")
                self._line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        finally:
            if log is not None:
                log.close()

    def _line(self, line: str) -> None:
        self._tail.append(line)
        lowered = line.lower()
        if any(marker in lowered for marker in _ADDRESS_IN_USE_MARKERS):
            self.address_in_use = True
        if self._ready_text is not None and self._ready_text in line:
            self._ready.set()
        if self._sink is not None:
            try:
                self._sink(self.name, line)
            except Exception:  # e.g. a closed terminal: keep draining the pipe so the child never blocks
                self._sink = None

    async def wait(self) -> int:
        """Wait until the process has exited and all its output was pumped; return its exit status.

        Cancelling the caller does not cancel the reaping itself, so many callers may wait at once.
        """
        if self._proc is None:
            raise RuntimeError(f"{self.name}: not spawned")
        if self._exit is None:
            self._exit = asyncio.create_task(self._reap(self._proc), name=f"{self.name}-reap")
        return await asyncio.shield(self._exit)

    async def _reap(self, proc: asyncio.subprocess.Process) -> int:
        """The exit status, once the process has exited and its output is drained (or stays open).

        `proc.wait()` (Python 3.11) returns only once the output pipe is closed too, and a process killed
        alone never closes it while its own children hold it (uvicorn's edge workers): that wait would
        last as long as they do. So the exit itself is polled as well, and the pump gets a moment to
        drain; what leftovers print after that still reaches the log until they are gone.
        """
        closed = asyncio.ensure_future(proc.wait())
        try:
            while proc.returncode is None:
                await asyncio.wait({closed}, timeout=_EXIT_POLL_SECONDS)
        finally:
            closed.cancel()
        if self._pump is not None:
            await asyncio.wait({self._pump}, timeout=_DRAIN_SECONDS)
        return proc.returncode

    async def wait_ready(self, seconds: float) -> None:
        """Wait for the ready line; raise `StartError` (or `AddressInUseError`) if the process exits first.

        On timeout the process is killed and reaped before the error is raised, so nothing is left behind.
        """
        if self._ready_text is None:
            raise RuntimeError(f"{self.name}: no ready line configured")
        ready = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self.wait())
        try:
            await asyncio.wait({ready, exited}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ready, exited):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ready.is_set():
            return
        if not self.running:
            await self.wait()
            raise self.exit_error("exited before it was ready")
        await self.terminate(signal.SIGKILL, grace=5.0)
        raise StartError(self.name, f"not ready within {seconds:.1f}s (killed)", self.tail())

    def exit_error(self, what: str) -> StartError:
        """The error describing an early exit, `AddressInUseError` when the output says the port was taken."""
        reason = f"{what} (exit status {self.returncode})"
        if self.address_in_use:
            return AddressInUseError(self.name, reason, self.tail())
        return StartError(self.name, reason, self.tail())

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the child's whole process group (it leads its own session); no-op once it exited."""
        if not self.running or self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group at once; reaping happens in `wait()`/`terminate()`."""
        self.send_signal(signal.SIGKILL)

    def kill_leftovers(self) -> None:
        """Once the process has been reaped, SIGKILL whatever is left of its process group.

        A process killed alone (`kill -9 <pid>`) leaves its children running, e.g. uvicorn's edge workers,
        which keep the port bound so that a restart could not listen on it. The group's id stays taken
        while any member lives, so the signal reaches those leftovers; with none left the id could only name
        another group after the pids wrapped around, not within a restart's few seconds.
        """
        if self._proc is None or self.running:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def terminate(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int | None:
        """Send `sig`, wait up to `grace` seconds, then SIGKILL; return the exit status (None: never spawned).

        SIGCONT follows the signal so a paused (SIGSTOPped) process can act on it.
        """
        if self._proc is None:
            return None
        if self.running:
            self.send_signal(sig)
            self.send_signal(signal.SIGCONT)
            try:
                return await asyncio.wait_for(self.wait(), timeout=grace)
            except TimeoutError:
                self.kill()
        return await self.wait()
