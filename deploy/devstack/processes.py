"""Run one of our own Python services (`python -m <module>`) as a child process.

Our services have no single ready log line, so readiness is a predicate that asks the service itself (the gRPC
health service, an HTTP /readyz), polled until it says yes, the process exits, or time runs out. The same
helper serves `python -m devstack up` and the test fixtures, so both start services the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.child import ChildProcess, LineSink, PrefixPrinter
from devstack.errors import StartError
from devstack.started import Started

if TYPE_CHECKING:
    from collections.abc import Mapping

ReadyCheck: TypeAlias = Callable[[], Awaitable[bool]]
"""An async predicate: True once the service is ready. It should answer within about a second."""


def grpc_serving(target: str, *, service: str = "", probe_timeout: float = 1.0) -> ReadyCheck:
    """Ready when the standard gRPC health service at `target` ("host:port") reports SERVING for `service`."""

    async def check() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                request = health_pb2.HealthCheckRequest(service=service)
                reply = await stub.Check(request, timeout=probe_timeout)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return check


def http_ok(url: str, *, probe_timeout: float = 1.0) -> ReadyCheck:
    """Ready when GET `url` answers 200 (proxy variables are ignored: this is always a local address)."""

    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=probe_timeout, trust_env=False) as client:
                response = await client.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    return check


class ServiceProcess(Started):
    """`[sys.executable, "-m", module]` with extra environment, output prefixed with `name`.

    `endpoint` is only descriptive (where the service listens), for summaries and error messages.
    """

    def __init__(
        self,
        name: str,
        module: str,
        env: Mapping[str, str],
        ready: ReadyCheck,
        *,
        sink: LineSink | None = None,
        log_path: Path | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
        stop_grace: float = 10.0,
        poll_interval: float = 0.1,
        endpoint: str | None = None,
    ) -> None:
        self.name = name
        self.module = module
        base: dict[str, str] = dict(os.environ) if inherit_env else {}
        self.extra_env = dict(env)
        self.env = {**base, "PYTHONUNBUFFERED": "1", **env}
        self.ready = ready
        self.sink: LineSink = sink if sink is not None else PrefixPrinter(stderr=True)
        self.log_path = log_path
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.poll_interval = poll_interval
        self.endpoint = endpoint
        self._child: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        """The running process id."""
        return self._child.pid if self._child is not None and self._child.running else None

    @property
    def returncode(self) -> int | None:
        """Exit status once it exited."""
        return self._child.returncode if self._child is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._child is not None and self._child.running

    def tail(self, count: int = 20) -> list[str]:
        """Last output lines, for error messages."""
        return self._child.tail(count) if self._child is not None else []

    async def start(self) -> None:
        """Spawn the service and return once `ready()` says so; on failure nothing is left running."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        child = ChildProcess(
            self.name,
            [sys.executable, "-m", self.module],
            env=self.env,
            cwd=Path(self.cwd) if self.cwd is not None else None,
            log_path=self.log_path,
            sink=self.sink,
        )
        self._child = child
        await child.spawn()
        try:
            await self._wait_ready(child)
        except BaseException:
            with contextlib.suppress(Exception):
                await child.terminate(signal.SIGKILL, grace=5.0)
            raise

    async def _wait_ready(self, child: ChildProcess) -> None:
        deadline = time.monotonic() + self.start_timeout
        exited = asyncio.create_task(child.wait())
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StartError(self.name, f"not ready within {self.start_timeout:.1f}s", child.tail())
                probe = asyncio.create_task(self._probe(remaining))
                await asyncio.wait({probe, exited}, return_when=asyncio.FIRST_COMPLETED)
                if exited.done():
                    probe.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await probe
                    raise child.exit_error("exited before it was ready")
                if probe.result():
                    return
                await asyncio.wait({exited}, timeout=min(self.poll_interval, max(remaining, 0)))
        finally:
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited

    async def _probe(self, remaining: float) -> bool:
        try:
            return await asyncio.wait_for(self.ready(), timeout=remaining)
        except TimeoutError:
            return False

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_grace` seconds; return the exit status (None: never started)."""
        if self._child is None:
            return None
        return await self._child.terminate(signal.SIGTERM, self.stop_grace)

    async def restart(self) -> None:
        """Stop (if running) and start again with the same environment, hence on the same port.

        What the old process left in its group (worker processes) is killed first: it would hold the port.
        """
        if self._child is not None:
            await self._child.terminate(signal.SIGTERM, self.stop_grace)
            self._child.kill_leftovers()
        await self.start()

    def kill(self) -> None:
        """SIGKILL at once (resilience tests); `stop()` or `wait()` reaps it."""
        if self._child is not None:
            self._child.kill()

    async def wait(self) -> int:
        """Wait for the process to exit; return its exit status."""
        if self._child is None:
            raise RuntimeError(f"{self.name} was never started")
        return await self._child.wait()
