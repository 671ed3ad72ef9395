"""Container health probe for every service of the image: `python /app/healthcheck.py [--live] [SERVICE]`.

Without SERVICE it probes the service this container runs, read from PID 1's command line (the entry
point execs `python -m <package>` or `nats-server`), so the image's one HEALTHCHECK fits every service.
Ports come from the same environment variables the services read.

Default (readiness): the gRPC health status must be SERVING, the HTTP readiness endpoint must answer 200.
`--live` (liveness, for orchestrators that replace unhealthy containers, such as ECS): any gRPC health
answer counts, and HTTP uses /healthz, so a bidder whose Redis is down is not restarted for it.
Exit 0 healthy, 1 unhealthy, 2 usage.
"""

from __future__ import annotations

import itertools
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 3.0

# service -> (kind, port variable, default port, readiness path, liveness path)
PROBES: dict[str, tuple[str, str, int, str, str]] = {
    "bidder": ("grpc", "BIDDER_PORT", 50051, "", ""),
    "archiver": ("grpc", "ARCHIVER_PORT", 50052, "", ""),
    "edge": ("http", "EDGE_PORT", 8080, "/readyz", "/healthz"),
    "fanout": ("http", "FANOUT_PORT", 8081, "/healthz", "/healthz"),
    "relay": ("http", "RELAY_PORT", 8090, "/healthz", "/healthz"),
    "nats": ("http", "NATS_MONITOR_PORT", 8222, "/healthz?js-enabled-only=true", "/healthz"),
}
MODULES = {
    "core_bidder": "bidder",
    "edge_gateway": "edge",
    "fanout": "fanout",
    "relay": "relay",
    "archiver": "archiver",
}


def service_of_pid1() -> str | None:
    """The service PID 1 runs, from its command line (`python -m core_bidder` -> `bidder`)."""
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if any(Path(arg).name == "nats-server" for arg in argv[:1]):
        return "nats"
    for flag, module in itertools.pairwise(argv):
        if flag == "-m":
            return MODULES.get(module.split(".")[0])
    return None


def probe_http(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT_SECONDS) as reply:
            return 200 <= int(reply.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def probe_grpc(port: int, *, live: bool) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError:
            return False
    return live or reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: list[str]) -> int:
    live = "--live" in argv
    names = [arg for arg in argv if arg != "--live"]
    service = names[0] if names else service_of_pid1()
    if service not in PROBES:
        print(f"healthcheck: unknown service {service!r}; one of {', '.join(PROBES)}", file=sys.stderr)
        return 2
    kind, port_env, default_port, ready_path, live_path = PROBES[service]
    port = int(os.environ.get(port_env) or default_port)
    healthy = (
        probe_grpc(port, live=live) if kind == "grpc" else probe_http(port, live_path if live else ready_path)
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
