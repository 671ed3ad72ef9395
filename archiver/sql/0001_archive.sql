-- The archive: every item and every accepted bid, stored once, keyed by event id.
-- Money is bigint minor units (never a float); times are timestamptz. No foreign keys: events of one
-- item may be redelivered in any order, and a bid must never wait for (or fail on) its item's row.

CREATE TABLE items (
    item_id        text        PRIMARY KEY,   -- its created event is "<item_id>.1"
    title          text        NOT NULL,
    description    text        NOT NULL,
    currency       text        NOT NULL,
    starting_price bigint      NOT NULL,
    min_increment  bigint      NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bids (
    item_id       text        NOT NULL,
    seq           bigint      NOT NULL,
    bid_id        text        NOT NULL,       -- = the event id
    bidder        text        NOT NULL,
    amount        bigint      NOT NULL,
    currency      text        NOT NULL,
    current_price bigint      NOT NULL,
    min_next_bid  bigint      NOT NULL,
    placed_at     timestamptz NOT NULL,
    archived_at   timestamptz NOT NULL DEFAULT now(),
    -- History pages read `WHERE item_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT n` from this index.
    PRIMARY KEY (item_id, seq),
    CONSTRAINT bids_event_id UNIQUE (bid_id)
);

-- Later kinds of events (auction extended, closed), kept whole until the archive projects them.
CREATE TABLE other_events (
    event_id    text        PRIMARY KEY,
    item_id     text        NOT NULL,
    seq         bigint      NOT NULL,
    kind        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     bytea       NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX other_events_item_seq ON other_events (item_id, seq);

-- Messages that are not valid events: acked (they could never succeed) but kept, keyed by their
-- JetStream sequence so a redelivery is stored once too.
CREATE TABLE dead_letters (
    stream_seq  bigint      PRIMARY KEY,
    subject     text        NOT NULL,
    payload     bytea       NOT NULL,
    error       text        NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
