-- Bid kinds (proxy bids, the increment ladder, buy-now): what an item offered, whether the platform placed
-- a bid for a maximum, and, FOR AUDIT ONLY, the hidden maximums themselves. On rows archived before this
-- migration NULL and false do NOT prove that there was no ladder, buy-now price, proxy bid or maximum: the
-- bidder took bid kinds (commit 361d0b8) before the archive learnt to store them, so items and bids
-- archived in between may have had them and lost them here. Only rows archived since say exactly that.
--
-- NOT PUBLIC: `bids.leader_max` and the `max_raises` table held maximums, which the contract shows to
-- their owner only; 0004 moves them into `maximum_audit` and drops both.

ALTER TABLE items
    -- The increment ladder as created, [{"from": 0, "increment": 100}, ...]; NULL: min_increment always.
    ADD COLUMN increments    jsonb,
    -- NULL: no buy-now.
    ADD COLUMN buy_now_price bigint;

ALTER TABLE bids
    -- The platform placed this bid for the bidder's maximum (`"proxy":true` in the event).
    ADD COLUMN proxy      boolean NOT NULL DEFAULT false,
    -- AUDIT ONLY: the maximum the bidder (the leader right after this bid) led with, when above `amount`.
    ADD COLUMN leader_max bigint,
    ADD CONSTRAINT bids_leader_max_above_amount CHECK (leader_max IS NULL OR leader_max > amount);

-- AUDIT ONLY: a leader raising their own maximum without moving the price (no bid event says so). `seq` is
-- the item's newest event's at the time; each raise of one item at one seq is higher than the last, so
-- the event id "<item_id>.<seq>.max.<max_amount>" is unique.
CREATE TABLE max_raises (
    event_id    text        PRIMARY KEY,
    item_id     text        NOT NULL,
    seq         bigint      NOT NULL,
    bidder      text        NOT NULL,
    max_amount  bigint      NOT NULL,
    raised_at   timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX max_raises_item_seq ON max_raises (item_id, seq);
