"""Readiness that follows a dependency: check it every interval, report the answer, in the background.

The bidder (Redis), the archiver (PostgreSQL) and the fan-out (Redis) each ask the same question of a
different dependency; this is the one loop. A check that raises or outlasts the interval counts as down,
so a frozen dependency turns readiness red within a bounded time rather than hanging the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from grpc_health.v1 import health_pb2

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]


class HealthFollower:
    def __init__(
        self,
        check: Callable[[], Awaitable[bool]],
        report: Callable[[bool], Awaitable[None]],
        interval_seconds: float,
        *,
        timeout_seconds: float | None = None,
    ) -> None:
        """`timeout_seconds`: how long one check may take before it counts as down (default: the interval)."""
        self._check = check
        self._report = report
        self._interval = interval_seconds
        self._timeout = timeout_seconds if timeout_seconds is not None else interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def once(self) -> bool:
        """Check now and report; True when the dependency answered in time."""
        try:
            ok = await asyncio.wait_for(self._check(), timeout=self._timeout)
        except Exception:
            ok = False
        await self._report(ok)
        return ok

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="health-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.once()


def grpc_health_report(
    health: health_aio.HealthServicer, *service_names: str
) -> Callable[[bool], Awaitable[None]]:
    """A `report` that sets the server's overall status ("") and each named service's."""
    names = ("", *service_names)

    async def report(ok: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in names:
            await health.set(name, status)

    return report
