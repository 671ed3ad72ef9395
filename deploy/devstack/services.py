"""How to run each of our services as a process: one place, used by `up`, the tests and the benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack.ports import LOCALHOST
from devstack.processes import ServiceProcess, grpc_serving, http_ok
from devstack.tokens import SECRET_ENV

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from devstack.child import LineSink


def bidder_process(
    redis_url: str,
    port: int,
    *,
    strategy: str = "lua",
    partitions: int | None = None,
    admin_token: str | None = None,
    sink: LineSink | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "bidder",
) -> ServiceProcess:
    """`python -m core_bidder` on `port`; `admin_token` switches on its operator calls (the rebuild)."""
    target = f"{LOCALHOST}:{port}"
    env = {
        "BIDDER_REDIS_URL": redis_url,
        "BIDDER_HOST": LOCALHOST,
        "BIDDER_PORT": str(port),
        "BIDDER_STRATEGY": strategy,
        **(extra_env or {}),
    }
    if partitions is not None:
        env["BIDDER_PARTITIONS"] = str(partitions)
    if admin_token is not None:
        env["BIDDER_ADMIN_TOKEN"] = admin_token
    return ServiceProcess(
        name,
        "core_bidder",
        env,
        grpc_serving(target),
        sink=sink,
        log_path=log_path,
        endpoint=f"grpc://{target}",
    )


def edge_process(
    bidder_target: str,
    port: int,
    jwt_secret: str,
    *,
    sink: LineSink | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    name: str = "edge",
) -> ServiceProcess:
    url = f"http://{LOCALHOST}:{port}"
    env = {
        "EDGE_HOST": LOCALHOST,
        "EDGE_PORT": str(port),
        "EDGE_BIDDER_TARGET": bidder_target,
        SECRET_ENV: jwt_secret,
        **(extra_env or {}),
    }
    return ServiceProcess(
        name, "edge_gateway", env, http_ok(f"{url}/readyz"), sink=sink, log_path=log_path, endpoint=url
    )
