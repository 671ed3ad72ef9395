"""CPU seconds per process over a run, so a benchmark names its bottleneck instead of guessing it.

Each named process is measured with its descendants (uvicorn's worker processes, a fan-out's
children), from `/proc/<pid>/stat` (user + system time); the load generator, which runs inside the
benchmark's own process or in processes it waits for, from `os.times()`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.server_base import process_tree

_TICKS = os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its living descendants (0 for a process gone)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS


def own_cpu_seconds() -> float:
    """This process and the children it has waited for (a pool of load generator processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class CpuMeter:
    """`start()`, run, then `seconds()`: CPU seconds each process spent in between."""

    def __init__(self, processes: Mapping[str, int | Sequence[int] | None]) -> None:
        """`processes`: a name for each process (or processes, summed) to measure, with its tree."""
        self._pids: dict[str, list[int]] = {}
        for name, pids in processes.items():
            if pids is None:
                continue
            self._pids[name] = [pids] if isinstance(pids, int) else list(pids)
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        readings = {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in self._pids.items()}
        readings[LOAD_GENERATOR] = own_cpu_seconds()
        return readings

    def start(self) -> None:
        self._before = self._read()

    def seconds(self) -> dict[str, float]:
        """CPU seconds spent by each process since `start()`."""
        after = self._read()
        return {name: after[name] - self._before.get(name, after[name]) for name in after}


def per_unit(seconds: dict[str, float], units: int) -> dict[str, float]:
    """CPU microseconds per unit of work (a bid) for each process, from `CpuMeter.seconds()`."""
    return {name: round(spent * 1e6 / max(1, units), 1) for name, spent in seconds.items()}
