-- AUDIT ONLY, NOT PUBLIC: every hidden maximum in one table, from the audit records of stream
-- `AUCTION_AUDIT` (proto/auction/v1/audit.proto), no longer from events. A maximum is shown to its owner
-- only, so the public stream `AUCTION` carries none; the relay publishes each on `auction.audit.<item_id>`.
-- No public call reads this table (history reads name their columns, `archiver/history.py`); the rebuild
-- (`archiver/rebuild.py`) reads it to restore the leader's maximum.
--
-- kind 'bid': after the bid `seq`, `bidder` (then the leader) leads with `max_amount`, above the bid's
-- amount. kind 'raise': the leader raised their own maximum to `max_amount` while `seq` was the item's
-- newest event (a raise moves no price and makes no event). The key is what makes a record unique, so a
-- re-published or redelivered record is stored once, whichever arrives first, the bid or its record.
CREATE TABLE maximum_audit (
    item_id     text        NOT NULL,
    seq         bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('bid', 'raise')),
    bidder      text        NOT NULL,
    max_amount  bigint      NOT NULL CHECK (max_amount > 0),
    -- The bid's placed_at, or when the raise was accepted.
    at          timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, seq, kind, max_amount)
);

-- What 0003 stored from the events that carried maximums (BidAccepted.leader_max, MaximumRaised) moves
-- here, and the old places go: one audit table, nothing hidden left in `bids`.
INSERT INTO maximum_audit (item_id, seq, kind, bidder, max_amount, at, archived_at)
SELECT item_id, seq, 'bid', bidder, leader_max, placed_at, archived_at FROM bids WHERE leader_max IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO maximum_audit (item_id, seq, kind, bidder, max_amount, at, archived_at)
SELECT item_id, seq, 'raise', bidder, max_amount, raised_at, archived_at FROM max_raises
ON CONFLICT DO NOTHING;
ALTER TABLE bids DROP CONSTRAINT IF EXISTS bids_leader_max_above_amount, DROP COLUMN IF EXISTS leader_max;
DROP TABLE IF EXISTS max_raises;
