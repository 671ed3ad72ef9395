"""Errors raised by the dev stack.

One tree, so callers can catch everything from here with one clause::

    DevstackError
    ├── MissingBinaryError   a server binary is not installed (run `make setup`)
    ├── StartError           a process exited, or was not ready in time, while starting
    │   └── AddressInUseError    it could not bind its port (the caller may retry on another)
    └── PortTakenError       a fixed port the user asked for (the edge's) is already taken
"""

from __future__ import annotations


class DevstackError(Exception):
    """Base class of every error the dev stack raises on purpose."""


class MissingBinaryError(DevstackError):
    """A server binary the stack needs is not installed."""


class StartError(DevstackError):
    """A process failed to start: it exited early, or did not report ready in time."""

    def __init__(self, name: str, reason: str, tail: list[str] | None = None) -> None:
        self.name = name
        self.reason = reason
        self.tail = list(tail or [])
        detail = "".join(f"\n    {line}" for line in self.tail[-20:])
        super().__init__(f"{name}: {reason}" + (f"; last output:{detail}" if detail else ""))


class AddressInUseError(StartError):
    """The process reported that its listening address was already in use."""


class PortTakenError(DevstackError):
    """A fixed port the caller asked for is already taken by another program."""
