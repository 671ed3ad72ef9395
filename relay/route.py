"""Where the relay publishes: each kind of message on its own subjects, in its own stream.

Public events go to `auction.events.<item_id>` (stream `AUCTION`), the hidden maximums' audit records to
`auction.audit.<item_id>` (stream `AUCTION_AUDIT`). Two streams, not one with two subject spaces: a
JetStream reader is granted a stream (its consumer and message-get API subjects), and a consumer without
a filter, or a get by sequence, would hand out every subject the stream holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relay.settings import RelaySettings


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for JetStream: `Nats-Msg-Id`, the stream that must store it, subject, bytes."""

    msg_id: str
    stream: str
    subject: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Route:
    """A stream and its subject prefix (`<prefix>.<item_id>`)."""

    stream: str
    prefix: str

    def message(self, msg_id: str, item_id: str, payload: bytes) -> Outgoing:
        return Outgoing(msg_id, self.stream, f"{self.prefix}.{item_id}", payload)


@dataclass(frozen=True, slots=True)
class Routes:
    events: Route
    audit: Route

    @classmethod
    def of(cls, settings: RelaySettings) -> Routes:
        return cls(
            Route(settings.stream, settings.subject_prefix),
            Route(settings.audit_stream, settings.audit_subject_prefix),
        )
