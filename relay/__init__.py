"""The outbox relay: Redis outbox streams to the JetStream stream `AUCTION`, losing nothing.

Every accepted bid and created item sits, written atomically with the state change, in its partition's
outbox stream (`auction_contract.redis_layout.outbox_key`). The relay reads those streams through one Redis
consumer group (so several relays share the partitions and a dead one's pending entries are claimed by
another),
publishes each entry as one `auction.v1.Event` with `Nats-Msg-Id` = the event id, and removes it from the
outbox only after JetStream acknowledged it. A crash between the two steps re-publishes the entry, which
JetStream's duplicate window drops, and the archiver's unique key drops again if it ever gets through.

Between JetStream's ack and the removal the relay also turns the stored events into per-bidder notices
(`relay.notices`: outbid, won, lost, extended), published on each bidder's Redis channel for the fan-out's
`/ws/me`; off the bid path, at-least-once.

Errors::

    RelayError
    └── BadEntry     an outbox entry that is not a valid event (left in the outbox and logged)
"""
