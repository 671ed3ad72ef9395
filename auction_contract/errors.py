"""The one error every service can answer for the same reason: the item does not exist (for it).

Each service keeps its own exception tree (its base class maps to its own protocol: a gRPC status, a
WebSocket close code); its not-found error is also this class, so code that only cares that an item is
missing, such as a test or a client of several services, catches one class and reads one `item_id`.
"""

from __future__ import annotations


class ItemNotFound(LookupError):
    def __init__(self, item_id: str, message: str | None = None) -> None:
        super().__init__(message or f"item {item_id!r} not found")
        self.item_id = item_id
