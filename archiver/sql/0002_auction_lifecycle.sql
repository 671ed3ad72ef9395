-- Auctions that end (soft close, reserve, the close): the item's rule and reserve, its extensions and its
-- one result. Items archived before this migration had a hard end, no reserve and no extension: the new
-- item columns are NULL for them, which says exactly that.

-- `ends_at` stays the effective end: every archived extension moves it (never back). `created_ends_at`
-- is the end as created (the `created` event's), NULL for items archived before this migration (whose
-- end never moved, so it is `ends_at`).
ALTER TABLE items
    ADD COLUMN created_ends_at        timestamptz,
    -- The soft close rule; all three NULL for a hard end (`soft_max_ends_at` NULL alone: no cap).
    ADD COLUMN soft_window_seconds    integer,
    ADD COLUMN soft_extension_seconds integer,
    ADD COLUMN soft_max_ends_at       timestamptz,
    -- The hidden reserve (from the outbox's copy of the `created` event); NULL: none.
    ADD COLUMN reserve_price          bigint;

-- `extended` events, each stored once (keyed like bids). They carry no time of their own: an extension
-- happened when the bid right before it (`seq - 1`, in `bids`) was placed.
CREATE TABLE extensions (
    item_id          text        NOT NULL,
    seq              bigint      NOT NULL,
    event_id         text        NOT NULL,
    ends_at          timestamptz NOT NULL,
    previous_ends_at timestamptz NOT NULL,
    archived_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, seq),
    CONSTRAINT extensions_event_id UNIQUE (event_id)
);

-- The `closed` event of each closed item: one row per item, its result. A redelivery of the same event
-- is skipped (its event id); a second, different close of one item would break the primary key and end
-- up as a dead letter, never silently dropped.
CREATE TABLE auction_results (
    item_id     text        PRIMARY KEY,
    seq         bigint      NOT NULL,
    event_id    text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sold', 'no_sale')),
    winner      text,
    final_price bigint,
    bid_count   bigint      NOT NULL,
    closed_at   timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auction_results_event_id UNIQUE (event_id),
    -- A sale names its winner and price; no sale names neither.
    CONSTRAINT auction_results_sale CHECK (CASE WHEN outcome = 'sold'
        THEN winner IS NOT NULL AND final_price IS NOT NULL ELSE winner IS NULL AND final_price IS NULL END)
);
