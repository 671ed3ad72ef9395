"""Property: any sequence of bids on one item gets, from the real bidder, the outcomes of a plain model."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auction.v1 import bidder_pb2
from tests.bidder_fixtures import BidderHandle, bidder
from tests.test_bidder_grpc import bid, new_item, reason_of

__all__ = ["bidder"]

STARTING_PRICE, INCREMENT = 100, 10


@dataclass
class Model:
    """The contract's rules, written as plainly as possible."""

    price: int | None = None
    seq: int = 1
    count: int = 0
    keys: dict[tuple[str, str], tuple[int, tuple[object, ...]]] = field(default_factory=dict)

    def place(self, bidder_id: str, amount: int, key: str) -> tuple[object, ...]:
        if key and (bidder_id, key) in self.keys:
            first_amount, first = self.keys[(bidder_id, key)]
            return first if first_amount == amount else ("IDEMPOTENCY_KEY_REUSED",)
        minimum = STARTING_PRICE if self.price is None else self.price + INCREMENT
        outcome: tuple[object, ...]
        if amount < minimum:
            outcome = ("BID_TOO_LOW", minimum)
        else:
            self.price, self.seq, self.count = amount, self.seq + 1, self.count + 1
            outcome = ("accepted", self.seq, amount, self.count)
        if key:
            self.keys[(bidder_id, key)] = (amount, outcome)
        return outcome


bids = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy"]),
        st.integers(min_value=1, max_value=400),
        st.sampled_from(["", "", "k1", "k2"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=bids)
async def test_bidder_matches_the_model_for_any_sequence(
    bidder: BidderHandle, sequence: list[tuple[str, int, str]]
) -> None:
    """Outcomes, seqs, prices and idempotent replays equal the model's, bid by bid."""
    item = await new_item(bidder)
    model = Model()
    for bidder_id, amount, key in sequence:
        expected = model.place(bidder_id, amount, key)
        answer = await bid(bidder, item.id, bidder_id, amount, key)
        if isinstance(answer, bidder_pb2.PlaceBidResponse):
            got: tuple[object, ...] = ("accepted", answer.seq, answer.amount, answer.item.bid_count)
        else:
            assert isinstance(answer, grpc.aio.AioRpcError)
            _, reason, metadata = reason_of(answer)
            got = (reason, int(metadata["min_next_bid"])) if "min_next_bid" in metadata else (reason,)
        assert got == expected
    final = (await bidder.stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))).item
    assert (final.seq, final.bid_count) == (model.seq, model.count)
    assert (final.current_price if final.HasField("current_price") else None) == model.price
