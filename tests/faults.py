"""Crash injection for the kill tests: a service that SIGKILLs itself at one of its checkpoints.

`python -m tests.faulty_relay` / `python -m tests.faulty_archiver` run the real service with its
`checkpoint` method replaced before it starts: on the n-th time the process reaches `FAULT_CRASH_POINT`
it dies exactly like a killed process (no cleanup, no acks). Production code carries only the no-op
seam; nothing of this is in the services' settings.
"""

from __future__ import annotations

import os
import signal
from typing import Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FaultSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FAULT_", frozen=True)

    # Die the n-th time the checkpoint is reached (0: never).
    crash_after: int = Field(default=0, ge=0)
    # Empty: the service's default point (the one its kill tests are mostly about).
    crash_point: str = ""


class HasCheckpoint(Protocol):
    def checkpoint(self, point: str) -> None: ...


def crash_at_checkpoint(cls: type[HasCheckpoint], default_point: str) -> None:
    """Replace `cls.checkpoint` with one that SIGKILLs the process at the configured moment."""
    settings = FaultSettings()
    crash_point = settings.crash_point or default_point
    reached = 0

    def checkpoint(self: HasCheckpoint, point: str) -> None:
        nonlocal reached
        if settings.crash_after and point == crash_point:
            reached += 1
            if reached >= settings.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)

    cls.checkpoint = checkpoint  # type: ignore[method-assign]


def fault_env(crash_after: int, crash_point: str = "") -> dict[str, str]:
    """The environment that arms a faulty service."""
    return {"FAULT_CRASH_AFTER": str(crash_after), "FAULT_CRASH_POINT": crash_point}
