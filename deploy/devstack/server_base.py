"""The life cycle shared by the real servers (Redis, NATS, Postgres) the stack and the tests run.

A subclass says how to prepare its data directory, which command to run on which ports, which log line means
ready and what to check after that; this base does the rest the same way for all three: free ports with a
retry when the bind loses a race, start/stop/restart on the same port and data, kill/pause/resume for
resilience tests, and output to `<data_dir>/<name>.log` plus an optional line sink.

`kill()`, `pause()` and `resume()` reach every process the server forked, not only its process group:
PostgreSQL's backends and auxiliary processes (checkpointer, walwriter, ...) each start a session of their
own, so signalling the postmaster's group alone would freeze the postmaster while open connections kept
answering, and a SIGKILL would leave backends attached to the shared memory the restart needs.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from devstack.child import ChildProcess, LineSink
from devstack.errors import AddressInUseError
from devstack.started import Started

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

BIND_ATTEMPTS = 5


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (read from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def wait_stopped(pid: int, timeout: float = 1.0) -> bool:
    """Wait until `pid` is really stopped (a SIGSTOP takes effect when it is next scheduled), or gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("T", "t", "Z", "X"):
            return True
        time.sleep(0.001)
    return False


def signal_tree(root: int, sig: int, *, leaves_first: bool = False) -> list[int]:
    """Send `sig` to `root` and every descendant; return the pids signalled (gone ones are skipped)."""
    tree = process_tree(root)
    for pid in reversed(tree) if leaves_first else tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return tree


class ServerProcess(Started):
    """A real server binary on probed free ports, with its data in `data_dir`."""

    name: ClassVar[str]
    ready_text: ClassVar[str]
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        sink: LineSink | None = None,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.port = 0
        self.sink = sink
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._child: ChildProcess | None = None

    # -- what subclasses provide -------------------------------------------------------------------------

    @abc.abstractmethod
    def _pick_ports(self) -> None:
        """Choose fresh free ports (called before the first start and after a lost bind race)."""

    @abc.abstractmethod
    def _command(self) -> Sequence[str]:
        """The argv that runs the server on the chosen ports."""

    async def _prepare(self) -> None:
        """Make the data directory usable (create it, initdb, ...); runs before every launch."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    async def _after_ready(self) -> None:
        """Check or set up more once the ready line was seen (e.g. a real query)."""

    def _env(self) -> Mapping[str, str] | None:
        return None

    def _cwd(self) -> Path | None:
        return None

    def _credentials(self) -> tuple[int | None, int | None]:
        """The (uid, gid) to run as; None keeps ours."""
        return None, None

    # -- public life cycle -------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """Where every run appends its output."""
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """The running server's process id."""
        return self._child.pid if self._child is not None and self._child.running else None

    @property
    def running(self) -> bool:
        """True while the server process is alive (also when paused)."""
        return self._child is not None and self._child.running

    async def start(self) -> None:
        """Start on free ports, retrying on new ones when the bind loses a race; return once ready."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        await self._prepare()
        for attempt in range(BIND_ATTEMPTS):
            if self.port == 0 or attempt > 0:
                self._pick_ports()
            try:
                await self._launch()
            except AddressInUseError:
                if attempt == BIND_ATTEMPTS - 1:
                    raise
                self._note(f"port {self.port} was taken meanwhile; retrying on another port")
            else:
                return

    async def restart(self) -> None:
        """Stop (if running) and start again on the same ports with the same data."""
        await self.stop()
        if self._child is not None:
            self._child.kill_leftovers()
        await self._prepare()
        await self._launch()

    async def stop(self) -> None:
        """Stop gracefully (the server's own shutdown signal), SIGKILL after `stop_grace` seconds.

        A paused server is thawed first, all of it, so its processes can act on the signal.
        """
        if self._child is not None:
            self.resume()
            await self._child.terminate(self.stop_signal, self.stop_grace)

    def kill(self) -> None:
        """SIGKILL the server and every process it forked at once, like a crash; `restart()` brings it back.

        Every process is frozen first (and seen frozen, `pause()`), so that nothing forks between listing
        the tree and killing it, and no child runs long enough to notice its parent's death (a PostgreSQL
        backend would log it and exit on its own, unlike a real crash of the whole machine).
        """
        pid = self.pid
        if self._child is None or pid is None:
            return
        self.pause()
        signal_tree(pid, signal.SIGKILL)
        self._child.kill()

    def pause(self) -> None:
        """SIGSTOP the server and every process it forked: connections stay open but nothing is answered."""
        pid = self.pid
        if self._child is None or pid is None:
            return
        self._child.send_signal(signal.SIGSTOP)  # the group first, so nothing forks meanwhile
        wait_stopped(pid)
        signal_tree(pid, signal.SIGSTOP)
        for member in process_tree(pid):  # frozen when this returns, not when each is next scheduled
            wait_stopped(member)

    def resume(self) -> None:
        """SIGCONT after `pause()`: the forked processes first, the server itself last."""
        pid = self.pid
        if self._child is None or pid is None:
            return
        signal_tree(pid, signal.SIGCONT, leaves_first=True)
        self._child.send_signal(signal.SIGCONT)

    async def wait(self) -> int:
        """Wait for the current server process to exit (for `up`, which reports unexpected deaths)."""
        if self._child is None:
            raise RuntimeError(f"{self.name} was never started")
        return await self._child.wait()

    # -- internals ---------------------------------------------------------------------------------------

    async def _launch(self) -> None:
        uid, gid = self._credentials()
        child = ChildProcess(
            self.name,
            self._command(),
            env=self._env(),
            cwd=self._cwd(),
            log_path=self.log_path,
            sink=self.sink,
            ready_text=self.ready_text,
            user=uid,
            group=gid,
        )
        self._child = child
        try:
            await child.spawn()
            await child.wait_ready(self.start_timeout)
            await self._after_ready()
        except BaseException:
            # Never leave a half-started server behind, also when our caller is cancelled.
            with contextlib.suppress(Exception):
                await child.terminate(signal.SIGKILL, grace=5.0)
            raise

    def _note(self, line: str) -> None:
        """A line of ours in the server's log and sink (e.g. a retry, a moved data directory)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"[devstack] {line}\n")
        if self.sink is not None:
            self.sink(self.name, f"[devstack] {line}")
