"""The archiver's exception tree (drawn in `archiver/__init__.py`)."""

from __future__ import annotations

from auction_contract import errors as contract_errors


class ArchiverError(Exception):
    """Base of every error the archiver raises on purpose."""


class ArchiveUnavailable(ArchiverError):
    """PostgreSQL could not do what was asked right now; retrying later may succeed."""


class ItemNotFound(ArchiverError, contract_errors.ItemNotFound):
    def __init__(self, item_id: str) -> None:
        super().__init__(item_id, f"item {item_id!r} is not in the archive")


class InvalidArgument(ArchiverError):
    pass


class MigrationError(ArchiverError):
    """A migration file changed after it was applied, or the files are not numbered 1, 2, 3, ..."""
