"""Both bid-write strategies name the leader before each bid in its outbox entry, the same way.

The relay's `outbid` notice reads `PREVIOUS_LEADER_FIELD` from the outbox entry, so both strategies must
write it alike: empty for the first bid, then the bidder each bid displaced (themselves when they raise
their own lead), within one group-commit batch as across calls.
"""

from __future__ import annotations

import time
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from auction.v1 import bidder_pb2
from auction_contract.redis_layout import EVENT_FIELD, PREVIOUS_LEADER_FIELD, item_keys
from tests.bidder_fixtures import BidderHandle, bidder

__all__ = ["bidder"]


async def _item(h: BidderHandle) -> str:
    reply = await h.stub.CreateItem(
        bidder_pb2.CreateItemRequest(
            title="Clock", currency="USD", starting_price=100, min_increment=10,
            ends_at=Timestamp(seconds=int(time.time()) + 3600),
        )
    )  # fmt: skip
    return str(reply.item.id)


async def test_bid_outbox_entries_name_the_previous_leader(bidder: BidderHandle) -> None:
    item_id = await _item(bidder)
    bids = [("ann", 100), ("bob", 110), ("bob", 120), ("cy", 130), ("ann", 100)]  # the last one is too low
    for name, amount in bids[:2]:
        await bidder.stub.PlaceBid(bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=name, amount=amount))
    # The rest in one call: one group-commit batch (one Lua step for the Lua strategy).
    batch = [bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=n, amount=a) for n, a in bids[2:]]
    await bidder.stub.PlaceBids(bidder_pb2.PlaceBidsRequest(bids=batch))
    keys = item_keys(item_id, 16)
    rows = cast("list[tuple[str, dict[str, str]]]", await bidder.redis.xrange(keys.outbox))
    mine = [fields for _, fields in rows if f'"item_id":"{item_id}"' in fields[EVENT_FIELD]]
    leaders = [fields.get(PREVIOUS_LEADER_FIELD) for fields in mine if '"type":"bid"' in fields[EVENT_FIELD]]
    assert leaders == ["", "ann", "bob", "bob"]
    created = [fields for fields in mine if '"type":"created"' in fields[EVENT_FIELD]]
    assert [PREVIOUS_LEADER_FIELD in fields for fields in created] == [False]


async def test_a_named_bid_the_leaders_maximum_answers_outbids_nobody(bidder: BidderHandle) -> None:
    """Ann leads with a maximum of 500; Bob's named 200 is answered by Ann's maximum in the same step:
    Bob's own event names no previous leader (Ann never lost the lead, so she hears no `outbid`), and
    Ann's answering bid names Bob (who does). Then Cy's maximum of 900 beats Ann's: it names Ann."""
    item_id = await _item(bidder)
    steps = [("ann", 0, 500), ("bob", 200, None), ("cy", 0, 900)]
    for name, amount, maximum in steps:
        await bidder.stub.PlaceBid(
            bidder_pb2.PlaceBidRequest(item_id=item_id, bidder=name, amount=amount, max_amount=maximum)
        )
    keys = item_keys(item_id, 16)
    rows = cast("list[tuple[str, dict[str, str]]]", await bidder.redis.xrange(keys.outbox))
    mine = [fields for _, fields in rows if f'"item_id":"{item_id}"' in fields[EVENT_FIELD]]
    bids = [fields for fields in mine if '"type":"bid"' in fields[EVENT_FIELD]]
    assert [fields.get(PREVIOUS_LEADER_FIELD) for fields in bids] == ["", "", "bob", "ann"], bids
