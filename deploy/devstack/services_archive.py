"""How to run the archival path as processes: the outbox relay, the archiver, and the rebuild command.

Like `devstack.services`, one place used by `up`, the tests and the benchmarks. The relay is ready when
its /healthz answers (connected, stream ensured, relaying); its /readyz additionally fails while NATS
or Redis is away or the outbox is over its bound, which is an alert, not a reason to refuse to start.
The archiver is ready when its gRPC health says SERVING (PostgreSQL reachable, schema applied).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devstack.ports import LOCALHOST
from devstack.processes import ServiceProcess, grpc_serving, http_ok

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from devstack.child import LineSink


def relay_process(
    redis_url: str,
    nats_url: str,
    port: int,
    *,
    partitions: int | None = None,
    consumer: str | None = None,
    sink: LineSink | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "relay",
    module: str = "relay",
) -> ServiceProcess:
    """`python -m relay` with /healthz, /readyz and /metrics on `port` (`module`: another entry point of
    the relay, such as the kill tests' faulty one)."""
    url = f"http://{LOCALHOST}:{port}"
    env = {
        "RELAY_REDIS_URL": redis_url,
        "RELAY_NATS_URL": nats_url,
        "RELAY_HOST": LOCALHOST,
        "RELAY_PORT": str(port),
        **(extra_env or {}),
    }
    if partitions is not None:
        env["RELAY_PARTITIONS"] = str(partitions)
    if consumer is not None:
        env["RELAY_CONSUMER"] = consumer
    return ServiceProcess(
        name, module, env, http_ok(f"{url}/healthz"), sink=sink, log_path=log_path, endpoint=url
    )


def archiver_env(
    nats_url: str,
    postgres_dsn: str,
    *,
    bidder_target: str | None = None,
    admin_token: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The archiver's settings as environment variables (shared by the service and the rebuild).

    The rebuild sends restored items to the bidder at `bidder_target` with its `admin_token`.
    """
    env = {"ARCHIVER_NATS_URL": nats_url, "ARCHIVER_POSTGRES_DSN": postgres_dsn}
    if bidder_target is not None:
        env["ARCHIVER_BIDDER_TARGET"] = bidder_target
    if admin_token is not None:
        env["ARCHIVER_BIDDER_ADMIN_TOKEN"] = admin_token
    env.update(extra_env or {})
    return env


def archiver_process(
    nats_url: str,
    postgres_dsn: str,
    port: int,
    *,
    metrics_port: int = 0,
    bidder_target: str | None = None,
    admin_token: str | None = None,
    sink: LineSink | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "archiver",
    module: str = "archiver",
) -> ServiceProcess:
    """`python -m archiver`: HistoryService, health, reflection on gRPC `port` (the edge's history target)."""
    target = f"{LOCALHOST}:{port}"
    env = archiver_env(nats_url, postgres_dsn, bidder_target=bidder_target, admin_token=admin_token)
    env.update({"ARCHIVER_HOST": LOCALHOST, "ARCHIVER_PORT": str(port)})
    if metrics_port:
        env["ARCHIVER_METRICS_PORT"] = str(metrics_port)
    env.update(extra_env or {})
    return ServiceProcess(
        name, module, env, grpc_serving(target), sink=sink, log_path=log_path, endpoint=f"grpc://{target}"
    )


def rebuild_command(
    item_ids: Sequence[str] = (),
    *,
    all_items: bool = False,
    force: bool = False,
    skip_backlog_check: bool = False,
) -> list[str]:
    """The argv of `python -m archiver.rebuild`; run it with `archiver_env(...)` added to the environment."""
    argv = [sys.executable, "-m", "archiver.rebuild", *item_ids]
    if all_items:
        argv.append("--all")
    if force:
        argv.append("--force")
    if skip_backlog_check:
        argv.append("--skip-backlog-check")
    return argv


@dataclass(frozen=True)
class RebuildResult:
    returncode: int
    output: str


async def run_rebuild(
    argv: Sequence[str], env: Mapping[str, str], limit_seconds: float = 60.0
) -> RebuildResult:
    """Run the rebuild command to completion; its exit status and output (stdout and stderr merged)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=limit_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return RebuildResult(proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace"))
