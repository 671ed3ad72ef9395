"""What crosses a process boundary, defined once: every service that reads or writes it imports it here.

- `redis_layout`: where an item lives in Redis (keys, hash fields, stream field), held to the Lua scripts.
- `replies`: the Lua bid step's reply codes.
- `rules`: item rules every service reads (status from the window, id patterns, money bounds, bid ids).
- `bid_rules`: the bid kinds' rules (proxy bids, the increment ladder, buy-now), the reference model.
- `wire_time`: time on the wire (Unix ms, protobuf Timestamp, RFC 3339).
- `proto_status`: item status between the domain, protobuf and JSON.
- `events`: the live event JSON (history, outbox, Pub/Sub): encoders, the decoder, `seq_of`.
- `item_json`: the item's public JSON (REST answers and the fan-out's snapshots).
- `notices`: the per-bidder notice JSON (`/ws/me`: outbid, won, lost, extended).

Formats only, no I/O and no mechanisms (those live in `auction_common`).
"""
