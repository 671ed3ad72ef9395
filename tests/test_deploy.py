"""The deploy files pass every offline check (deploy/validate.py), the checks catch what they claim to,
and the image's health probe tells ready from alive against real servers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
import validate
from deploy_policy import compose_policy, docker_context_includes, kubernetes_policy, terraform_structure
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from tests.conftest import scaled

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from devstack.servers import NatsServer

HEALTHCHECK = Path(__file__).resolve().parents[1] / "deploy" / "docker" / "healthcheck.py"


@pytest.mark.parametrize("check", list(validate.CHECKS))
def test_offline_deploy_check_passes(check: str) -> None:
    """Each offline check of deploy/ passes; only an absent optional tool (terraform) skips one."""
    result = validate.run_check(check)
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.problems == []


def _deployment(name: str = "edge", **container: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "args": [name], **container}]},
            },
        },
    }


def test_kubernetes_policy_flags_an_unhardened_unbudgeted_pod() -> None:
    """A pod without limits, probes, non-root or read-only root, PDB, HPA or its Secret is reported."""
    docs = [
        _deployment(
            env=[{"name": "AUCTION_JWT_SECRET", "valueFrom": {"secretKeyRef": {"name": "jwt", "key": "k"}}}]
        ),
        {"kind": "Service", "metadata": {"name": "edge"}, "spec": {"selector": {"app": "other"}}},
    ]
    problems = "\n".join(kubernetes_policy(docs, external_secrets=set()))
    for expected in (
        "not runAsNonRoot",
        "root filesystem not read-only",
        "no limits.memory",
        "no readinessProbe",
        "refers to missing Secret jwt",
        "Service edge: selector matches no pods",
        "Deployment edge: no PodDisruptionBudget",
        "Deployment fanout: no HorizontalPodAutoscaler",
    ):
        assert expected in problems


def test_kubernetes_policy_wants_native_grpc_probes_and_a_long_fanout_grace() -> None:
    """A bidder probed over TCP and a fan-out whose grace is below preStop + shutdown are reported."""
    bidder = _deployment("bidder", readinessProbe={"tcpSocket": {"port": 50051}})
    fanout = _deployment(
        "fanout",
        readinessProbe={"httpGet": {"path": "/healthz", "port": "http"}},
        lifecycle={"preStop": {"sleep": {"seconds": 10}}},
        env=[{"name": "FANOUT_SHUTDOWN_TIMEOUT_SECONDS", "value": "20"}],
    )
    problems = "\n".join(kubernetes_policy([bidder, fanout], external_secrets=set()))
    assert "gRPC service without a native grpc readiness probe" in problems
    assert "terminationGracePeriodSeconds below preStop + shutdown" in problems
    assert "readinessProbe uses undeclared port 'http'" in problems


def test_terraform_structure_flags_undescribed_unused_and_undefined() -> None:
    """Variables without description or type, unused variables and references to nothing are reported."""
    files = {
        "main.tf": {
            "variable": [{'"a"': {"type": "string"}}, {'"b"': {"description": '"used"'}}],
            "output": [{'"o"': {"value": "${aws_lb.missing.arn}"}}],
            "resource": [{'"aws_lb"': {'"x"': {"name": "${var.b}-${local.nope}", "count": "${var.c}"}}}],
        }
    }
    assert terraform_structure(files) == [
        "main.tf: aws_lb.missing is not declared",
        "main.tf: local.nope is not defined",
        "main.tf: output o has no description",
        "main.tf: var.c is not declared",
        "main.tf: variable a has no description",
        "main.tf: variable b has no type",
        "variable a is never used",
    ]


def test_compose_policy_flags_unhealthy_dependencies_and_writable_containers() -> None:
    """depends_on without service_healthy, a service without healthcheck and a writable image are reported."""
    config = {
        "services": {
            "redis": {"image": "redis"},
            "bidder": {"image": "ours", "depends_on": {"redis": {"condition": "service_started"}}},
        }
    }
    assert compose_policy(config, own_image="ours") == [
        "compose service redis: no healthcheck",
        "compose service bidder: no healthcheck",
        "compose service bidder: depends_on redis is not service_healthy",
        "compose service bidder: root filesystem is not read_only",
        "compose service bidder: capabilities not dropped",
    ]


def test_dockerignore_allowlist_semantics() -> None:
    """`*` keeps everything out, `!dir/` lets a directory (and all below it) back in, later lines win."""
    patterns = ["*", "!core_bidder/", "!deploy/devstack/", "**/__pycache__"]
    assert docker_context_includes(patterns, "core_bidder")
    assert docker_context_includes(patterns, "deploy/devstack")
    assert not docker_context_includes(patterns, "deploy/terraform")
    assert not docker_context_includes(patterns, "relay")


async def _healthcheck(*args: str, env: dict[str, str]) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTHCHECK),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=scaled(30))


@pytest_asyncio.fixture(loop_scope="session")
async def health_server() -> AsyncIterator[tuple[int, Any]]:
    """A gRPC server with only the standard health service, on a free port."""
    server = grpc.aio.server()
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, health
    finally:
        await server.stop(None)


async def test_healthcheck_grpc_ready_only_when_serving_but_alive_when_answering(
    health_server: tuple[int, Any],
) -> None:
    """NOT_SERVING (Redis down) fails readiness but passes --live; SERVING passes both; no server fails."""
    port, health = health_server
    env = {"BIDDER_PORT": str(port)}
    await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await _healthcheck("bidder", env=env) == 1
    assert await _healthcheck("--live", "bidder", env=env) == 0
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    assert await _healthcheck("bidder", env=env) == 0
    assert await _healthcheck("archiver", env={"ARCHIVER_PORT": "1"}) == 1


async def test_healthcheck_nats_probes_the_monitoring_endpoint(nats_server: NatsServer) -> None:
    """The nats probe passes against a real JetStream server and fails on a closed port; unknown is 2."""
    assert await _healthcheck("nats", env={"NATS_MONITOR_PORT": str(nats_server.monitor_port)}) == 0
    assert await _healthcheck("nats", env={"NATS_MONITOR_PORT": "1"}) == 1
    assert await _healthcheck("nonsense", env={}) == 2
