"""The relay's exception tree (drawn in `relay/__init__.py`)."""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class BadEntry(RelayError):
    """An outbox entry that cannot be turned into an event; it stays in the outbox for a human to look at."""
