"""How to run the WebSocket fan-out as a process (for `up`, the tests and the benchmark).

Several fan-out processes may share one port (SO_REUSEPORT) to use every core. Readiness must then be
asked of the process just started, not of whichever sibling the kernel hands the probe to: every answer
carries `X-Fanout-Pid`, and the probe retries until the new process's pid answers `/healthz` with 200.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import httpx

from devstack.ports import LOCALHOST
from devstack.processes import ServiceProcess

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from devstack.child import LineSink
    from devstack.processes import ReadyCheck

_PROBES_PER_CHECK = 16


def own_healthz(url: str, process: ServiceProcess, *, probe_timeout: float = 1.0) -> ReadyCheck:
    """Ready when `url` answers 200 from `process` itself (checked by the `X-Fanout-Pid` header)."""

    async def check() -> bool:
        pid = process.pid
        if pid is None:
            return False
        async with httpx.AsyncClient(timeout=probe_timeout, trust_env=False) as client:
            for _ in range(_PROBES_PER_CHECK):
                try:
                    response = await client.get(url, headers={"Connection": "close"})
                except httpx.HTTPError:
                    return False
                if response.headers.get("x-fanout-pid") == str(pid):
                    return response.status_code == 200
        return False

    return check


def cpu_for(index: int, count: int) -> int | None:
    """The CPU for fan-out process `index` of `count` on this machine: one each while there are enough.

    Left to the scheduler, the processes woken by one Pub/Sub message are often placed on the same core
    for the first tens of milliseconds of a broadcast (measured here: p99 at 10,000 viewers swung between
    about 50 and 100 ms from run to run; pinned, it stayed near 50). With more processes than CPUs
    pinning would only crowd them, so they float.
    """
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[index] if count <= len(allowed) else None


def fanout_process(
    redis_url: str,
    bidder_target: str,
    port: int,
    *,
    partitions: int | None = None,
    sharded_pubsub: bool = False,
    sink: LineSink | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "fanout",
    cpu: int | None = None,
) -> ServiceProcess:
    """`python -m fanout` on `port` (127.0.0.1), reading Redis at `redis_url` and snapshots from the bidder.

    `partitions` and `sharded_pubsub` must match the bidder's. Start several with the same `port` (and
    distinct names) to use several cores; `cpu` pins the process to one (see `cpu_for`).
    """
    env = {
        "FANOUT_REDIS_URL": redis_url,
        "FANOUT_HOST": LOCALHOST,
        "FANOUT_PORT": str(port),
        "FANOUT_BIDDER_TARGET": bidder_target,
        "FANOUT_SHARDED_PUBSUB": "true" if sharded_pubsub else "false",
        **(extra_env or {}),
    }
    if partitions is not None:
        env["FANOUT_PARTITIONS"] = str(partitions)
    if cpu is not None:
        env.setdefault("FANOUT_CPU", str(cpu))

    async def not_yet() -> bool:
        return False

    process = ServiceProcess(
        name, "fanout", env, not_yet, sink=sink, log_path=log_path, endpoint=f"ws://{LOCALHOST}:{port}"
    )
    process.ready = own_healthz(f"http://{LOCALHOST}:{port}/healthz", process)
    return process


def fanout_processes(
    count: int,
    redis_url: str,
    bidder_target: str,
    port: int,
    *,
    partitions: int | None = None,
    sharded_pubsub: bool = False,
    sink: LineSink | None = None,
    log_dir: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> list[ServiceProcess]:
    """`count` fan-out processes sharing `port`, named `fanout`, `fanout-2`, ...; start them in order."""
    processes = []
    for index in range(count):
        name = "fanout" if index == 0 else f"fanout-{index + 1}"
        log_path = log_dir / f"{name}.log" if log_dir is not None else None
        process = fanout_process(
            redis_url, bidder_target, port, partitions=partitions, sharded_pubsub=sharded_pubsub,
            sink=sink, log_path=log_path, extra_env=extra_env, name=name, cpu=cpu_for(index, count),
        )  # fmt: skip
        processes.append(process)
    return processes
