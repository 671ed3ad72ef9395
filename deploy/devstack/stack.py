"""`python -m devstack up`: the whole platform in one terminal.

Order matters and is kept in two lists: the servers (Redis, NATS with JetStream, Postgres) start first, then
our services in `SERVICES` order, each once the previous one is ready. Shutdown runs the same list backwards.
A later service (fan-out on 8081, outbox relay, archiver) is one more `ServiceSpec` appended to `SERVICES`:
its `build` picks a port, reads what it needs from the `StackContext` (server URLs, endpoints of services
started before it) and registers its own endpoint there.

Redis's durability is an option (`--redis-fsync everysec|always`, `--redis-replica`: a second Redis that
replicates the first, and a bidder that waits for it after every write step; see `devstack.redis_server`).

Every process is supervised from the moment it is ready (`devstack.supervisor`): one that dies is restarted
on its ports and data, with backoff, while the rest keeps running; only a signal stops the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from devstack import summary
from devstack.child import LineSink, PrefixPrinter
from devstack.errors import DevstackError, PortTakenError
from devstack.ports import LOCALHOST, free_port, port_is_free
from devstack.processes import ServiceProcess
from devstack.servers import NatsServer, PostgresServer, RedisReplica, RedisServer
from devstack.services import bidder_process, edge_process
from devstack.services_archive import archiver_process, relay_process
from devstack.services_fanout import cpu_for, fanout_process
from devstack.status import STATUS_FILE
from devstack.supervisor import Supervisor
from devstack.tokens import (
    SECRET_ENV,
    SERVICE_TOKEN_ENV,
    ensure_local_secret,
    local_admin_token,
    local_service_token,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from devstack.redis_server import Fsync

RESERVED_PORTS = {8081: "the WebSocket fan-out"}
SELF = "devstack"


def default_edge_workers() -> int:
    """One edge process per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class UpOptions:
    """What the `up` command line chose."""

    state_dir: Path
    edge_port: int = 8080
    fanout_port: int = 8081
    # Fan-out processes sharing the port (SO_REUSEPORT): one per core.
    fanout_processes: int = 2
    # Edge worker processes (EDGE_WORKERS): one per core, at most 4 (measured on 2 cores, one hot item:
    # 2 workers gave 13-14% more bids/s than 1 at 64 and 200 bidders).
    edge_workers: int = field(default_factory=default_edge_workers)
    strategy: str = "lua"
    partitions: int | None = None
    servers_only: bool = False
    # Redis's AOF fsync policy: `everysec` (the default) or `always` (fsync before every reply).
    redis_fsync: Fsync = "everysec"
    # A second Redis replicating the first; the bidder and the relay then wait for it
    # (BIDDER_REDIS_WAIT_REPLICAS=1, RELAY_REDIS_WAIT_REPLICAS=1).
    redis_replica: bool = False


@dataclass
class StackContext:
    """What a service's `build` may use: options, the running servers, the endpoints registered so far."""

    options: UpOptions
    jwt_secret: str
    redis: RedisServer
    nats: NatsServer
    postgres: PostgresServer
    sink: LineSink
    endpoints: dict[str, str] = field(default_factory=dict)
    redis_replica: RedisReplica | None = None

    @property
    def servers(self) -> list[RedisServer | NatsServer | PostgresServer]:
        """The servers in start order: Redis (and its replica), NATS, PostgreSQL."""
        replica = [] if self.redis_replica is None else [self.redis_replica]
        return [self.redis, *replica, self.nats, self.postgres]

    def log_path(self, name: str) -> Path:
        """Where a service's output is kept besides the terminal."""
        logs = self.options.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name}.log"


@dataclass(frozen=True)
class ServiceSpec:
    """One of our services: `python -m module`, built (port, env, readiness) right before it starts."""

    name: str
    module: str
    build: Callable[[StackContext], ServiceProcess]


class Component(Protocol):
    """What `up` needs from anything it runs (servers and our services alike)."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    async def stop(self) -> object: ...

    async def restart(self) -> None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


def _service_token(ctx: StackContext) -> dict[str, str]:
    """The bidder takes calls only from the stack's own services (`auction_common.service_auth`)."""
    return {SERVICE_TOKEN_ENV: local_service_token(ctx.jwt_secret)}


def _bidder(ctx: StackContext) -> ServiceProcess:
    port = free_port()
    ctx.endpoints["bidder"] = f"{LOCALHOST}:{port}"
    # With a replica, every write step waits for it (`core_bidder.replica_wait`).
    wait = {} if ctx.redis_replica is None else {"BIDDER_REDIS_WAIT_REPLICAS": "1"}
    return bidder_process(
        ctx.redis.url, port, strategy=ctx.options.strategy, partitions=ctx.options.partitions,
        admin_token=local_admin_token(ctx.jwt_secret), sink=ctx.sink, log_path=ctx.log_path("bidder"),
        extra_env={**_service_token(ctx), **wait},
    )  # fmt: skip


def _relay(ctx: StackContext) -> ServiceProcess:
    # With a replica, a round of outbox entries is published only once the replica holds it
    # (`relay.replica_wait`): JetStream never gets a step a failover could lose.
    wait = {} if ctx.redis_replica is None else {"RELAY_REDIS_WAIT_REPLICAS": "1"}
    # A fixed consumer name: a restarted relay resumes its own pending outbox entries at once.
    return relay_process(
        ctx.redis.url, ctx.nats.url, free_port(), partitions=ctx.options.partitions, consumer="relay-1",
        sink=ctx.sink, log_path=ctx.log_path("relay"), extra_env=wait,
    )  # fmt: skip


def _archiver(ctx: StackContext) -> ServiceProcess:
    port = free_port()
    ctx.endpoints["archiver"] = f"{LOCALHOST}:{port}"
    return archiver_process(
        ctx.nats.url, ctx.postgres.dsn, port, bidder_target=ctx.endpoints["bidder"],
        admin_token=local_admin_token(ctx.jwt_secret), sink=ctx.sink, log_path=ctx.log_path("archiver"),
    )  # fmt: skip


def _edge(ctx: StackContext) -> ServiceProcess:
    port = ctx.options.edge_port
    ctx.endpoints["edge"] = f"http://{LOCALHOST}:{port}"
    ctx.endpoints["web"] = f"http://{LOCALHOST}:{port}/app/"
    return edge_process(
        ctx.endpoints["bidder"], port, ctx.jwt_secret, sink=ctx.sink, log_path=ctx.log_path("edge"),
        extra_env={
            "EDGE_HISTORY_TARGET": ctx.endpoints["archiver"],
            "EDGE_WORKERS": str(ctx.options.edge_workers),
            # The web page (`/app/`) opens its WebSockets here (the fan-out starts right after the edge).
            "EDGE_FANOUT_PUBLIC_URL": f"ws://{LOCALHOST}:{ctx.options.fanout_port}",
            **_service_token(ctx),
        },
    )  # fmt: skip


def _page_origins(ctx: StackContext) -> str:
    """The Origins of the edge's web page, whichever name of this host the browser used: the fan-out
    refuses browsers from any other (`FANOUT_ALLOWED_ORIGINS`)."""
    port = ctx.options.edge_port
    return f"http://{LOCALHOST}:{port},http://localhost:{port}"


def _fanout(index: int) -> Callable[[StackContext], ServiceProcess]:
    def build(ctx: StackContext) -> ServiceProcess:
        name = "fanout" if index == 0 else f"fanout-{index + 1}"
        port = ctx.options.fanout_port
        ctx.endpoints["fanout"] = f"ws://{LOCALHOST}:{port}"
        cpu = cpu_for(index, ctx.options.fanout_processes)
        return fanout_process(
            ctx.redis.url, ctx.endpoints["bidder"], port, partitions=ctx.options.partitions,
            sink=ctx.sink, log_path=ctx.log_path(name), name=name, cpu=cpu,
            # The secret verifies bidders' tokens on /ws/me (per-bidder notices).
            extra_env={
                **_service_token(ctx), SECRET_ENV: ctx.jwt_secret,
                "FANOUT_ALLOWED_ORIGINS": _page_origins(ctx),
            },
        )  # fmt: skip

    return build


SERVICES: list[ServiceSpec] = [
    ServiceSpec("bidder", "core_bidder", _bidder),
    ServiceSpec("relay", "relay", _relay),
    ServiceSpec("archiver", "archiver", _archiver),
    ServiceSpec("edge", "edge_gateway", _edge),
    ServiceSpec("fanout", "fanout", _fanout(0)),
    ServiceSpec("fanout-2", "fanout", _fanout(1)),
]


def preflight(options: UpOptions) -> None:
    """Refuse early, before anything starts, what would fail later: a taken edge port, a missing service."""
    if options.servers_only:
        return
    port = options.edge_port
    if port in RESERVED_PORTS:
        raise PortTakenError(f"port {port} is kept for {RESERVED_PORTS[port]}; choose another --edge-port")
    if not port_is_free(port):
        raise PortTakenError(
            f"port {port} on {LOCALHOST} is already in use (another stack still running?); "
            f"start with another edge port, e.g. `python -m devstack up --edge-port {free_port()}`"
        )
    if not port_is_free(options.fanout_port):
        raise PortTakenError(
            f"port {options.fanout_port} on {LOCALHOST} is already in use; "
            f"start with another fan-out port, e.g. `--fanout-port {free_port()}`"
        )
    for spec in SERVICES:
        if importlib.util.find_spec(f"{spec.module}.__main__") is None:
            raise DevstackError(
                f"{spec.module} has no __main__ yet, so `python -m {spec.module}` cannot run; "
                "use --servers-only to start only Redis, NATS and Postgres"
            )


class Stack:
    """Starts, supervises and stops everything `up` runs."""

    def __init__(self, options: UpOptions, sink: LineSink | None = None) -> None:
        self.options = options
        self.sink: LineSink = sink if sink is not None else PrefixPrinter()
        state = options.state_dir
        redis = RedisServer(state / "redis", fsync=options.redis_fsync, sink=self.sink)
        self.ctx = StackContext(
            options=options,
            jwt_secret=ensure_local_secret(state),
            redis=redis,
            nats=NatsServer(state / "nats", sink=self.sink),
            postgres=PostgresServer(state / "postgres", sink=self.sink),
            sink=self.sink,
            redis_replica=RedisReplica(state / "redis-replica", redis, sink=self.sink)
            if options.redis_replica
            else None,
        )
        self.started: list[Component] = []
        self._stopping = asyncio.Event()
        self.supervisor = Supervisor(self.say, self._stopping, status_path=self.status_path)

    def say(self, line: str) -> None:
        """A line of our own, prefixed like the children's."""
        self.sink(SELF, line)

    def request_stop(self, signame: str) -> None:
        """Signal handler: the first signal stops in order, a second one kills what is left at once."""
        if self._stopping.is_set():
            self.say(f"{signame} again: killing what is left")
            for component in self.started:
                component.kill()
            return
        self.say(f"{signame} received: stopping")
        self._stopping.set()

    async def _start_all(self) -> None:
        ctx = self.ctx
        for server in ctx.servers:
            self.started.append(server)
            await server.start()
            self.supervisor.watch(server)
        ctx.endpoints["redis"] = ctx.redis.url
        if ctx.redis_replica is not None:
            ctx.endpoints["redis_replica"] = ctx.redis_replica.url
        ctx.endpoints["nats"] = ctx.nats.url
        ctx.endpoints["nats_monitor"] = ctx.nats.monitor_url
        ctx.endpoints["postgres"] = ctx.postgres.dsn
        if self.options.servers_only:
            return
        for spec in SERVICES:
            service = spec.build(ctx)
            self.started.append(service)
            await service.start()
            self.supervisor.watch(service)

    async def run(self) -> int:
        """Start everything, print the summary, run until a signal (exit 0); exit 1 if the start failed.

        A process that dies after it was ready is the supervisor's to restart, not a reason to stop.
        """
        startup = asyncio.create_task(self._start_all())
        stop = asyncio.create_task(self._stopping.wait())
        code = 0
        try:
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not startup.done():
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError, DevstackError):
                    await startup
            elif (failure := startup.exception()) is not None:
                self.say(f"could not start: {failure}")
                if not isinstance(failure, DevstackError):
                    traceback.print_exception(failure)
                code = 1
            else:
                self._announce()
                await stop
        finally:
            stop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop
            # First stop restarting, then stop: a process that exits during the shutdown stays down.
            await self.supervisor.close()
            await self._stop_all()
            with contextlib.suppress(FileNotFoundError):
                self.endpoints_path.unlink()
        return code

    async def _stop_all(self) -> None:
        for component in reversed(self.started):
            try:
                await component.stop()
            except Exception as exc:  # keep stopping the others
                self.say(f"stopping {component.name} failed: {exc!r}")
        self.started.clear()

    @property
    def endpoints_path(self) -> Path:
        """`<state>/endpoints.json`, present while the stack is up."""
        return self.options.state_dir / "endpoints.json"

    @property
    def status_path(self) -> Path:
        """`<state>/status.json`: each process's state and restarts, present while the stack is up."""
        return self.options.state_dir / STATUS_FILE

    def _announce(self) -> None:
        endpoints = {**self.ctx.endpoints, "devstack_pid": str(os.getpid())}
        tmp = self.endpoints_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.endpoints_path)
        from_env = bool(os.environ.get(SECRET_ENV))
        sys.stdout.write(summary.render(self.options, self.ctx.endpoints, secret_from_env=from_env))
        sys.stdout.flush()


async def up(options: UpOptions) -> int:
    """Run the stack until SIGINT/SIGTERM; the exit code `python -m devstack up` returns."""
    try:
        preflight(options)
    except DevstackError as exc:
        sys.stderr.write(f"devstack: {exc}\n")
        return 2
    stack = Stack(options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stack.request_stop, sig.name)
    try:
        return await stack.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
