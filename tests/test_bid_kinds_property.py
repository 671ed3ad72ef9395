"""Property: Lua, WATCH and the reference model agree on any sequence of bids of every kind.

Hypothesis generates sequences of plain bids, maximum bids, both at once, raises of the leader's own
maximum and buy-now attempts over four bidders, on items with random starting prices, reserves, buy-now
prices and increment ladders. Two tests share the budget (at least 2,000 sequences, bounded in time):

- the model alone, on 1,700 sequences: its invariants, and the contract's rule applied to all the
  maximums at once equals what the step-by-step model reached;
- the real bid step on real Redis, 16 sequences per example and 40 examples (640 sequences), each on
  both strategies: every answer, the final item, every event and every outbox entry (with the leader
  before each bid and, audit only, the leader's maximum; a raise's outbox-only record) are the model's.
  The sequences of one example run side by side, so the group commit carries many items per Redis
  round trip; on Lua once more with each run of consecutive bids sent as one call (one script call
  applies them in order).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from auction_contract.bid_rules import Book, buy_now, increment_at, place
from core_bidder.errors import BidRejected
from core_bidder.rules import AcceptedBid
from core_bidder.settings import BidderSettings
from core_bidder.store import BidRequest, ItemStore, now_ms
from core_bidder.watch_writer import WatchBidWriter
from core_bidder.writers import LuaBidWriter
from devstack.servers import RedisServer

BIDDERS = ("ann", "bob", "cy", "dee")
Answer = tuple[object, ...]


@dataclass(frozen=True)
class Shape:
    starting_price: int
    ladder: tuple[tuple[int, int], ...]
    reserve: int | None
    buy_now_price: int | None


# Money on a coarse grid most of the time, so that equal maximums, bids landing exactly on a maximum
# and prices capped at one happen often; anywhere in between the rest of the time.
money = st.integers(1, 100).map(lambda x: x * 25) | st.integers(1, 2500)
steps = st.sampled_from([1, 5, 10, 25, 50, 100]) | st.integers(1, 150)


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    starting_price = draw(st.integers(0, 12).map(lambda x: x * 25) | st.integers(0, 300))
    starts = sorted(draw(st.sets(money, max_size=3)))
    ladder = tuple(zip([0, *starts], draw(st.lists(steps, min_size=len(starts) + 1,
                                                   max_size=len(starts) + 1)), strict=True))  # fmt: skip
    reserve = draw(st.none() | st.integers(0, 60).map(lambda x: starting_price + x * 25))
    floor = max(starting_price + 1, reserve or 0)
    buy = draw(st.none() | st.integers(floor, floor + 500))
    return Shape(starting_price, ladder, reserve, buy)


def _bid(op: tuple[str, str, int | None, int | None]) -> tuple[str, str, int | None, int | None]:
    """A drawn (amount, extra): the maximum is the amount plus the extra (at least 1 without an amount)."""
    kind, who, amount, extra = op
    if extra is None:
        return op
    return (kind, who, amount, (amount or 0) + max(extra, 0 if amount else 1))


# ("bid", bidder, amount or None, max or None) | ("raise", delta) | ("buy", bidder)
# | ("match", bidder, offset, plain): another bidder sends the leader's maximum (as the test sent it)
# plus offset, as a maximum or as a plain bid: ties, and bids a unit either side of a maximum.
# | ("reserve", bidder, offset): a maximum of the reserve plus offset (the reserve rule's edge).
bid_op = st.tuples(
    st.just("bid"), st.sampled_from(BIDDERS), st.none() | money, st.none() | st.just(0) | money
).map(_bid)
ops = st.lists(
    st.one_of(
        bid_op,
        bid_op,
        bid_op,
        st.tuples(st.just("raise"), money),
        st.tuples(st.just("match"), st.sampled_from(BIDDERS), st.sampled_from([-1, 0, 0, 1]), st.booleans()),
        st.tuples(st.just("reserve"), st.sampled_from(BIDDERS), st.sampled_from([-1, 0, 0, 1])),
        st.tuples(st.just("buy"), st.sampled_from(BIDDERS)),
    ),
    min_size=1,
    max_size=14,
)
sequences = st.tuples(shapes(), ops)


@dataclass
class ModelAuction:
    """The contract, as the model states it, plus what the store adds around it: seq and the close."""

    item_id: str
    shape: Shape
    book: Book = field(init=False)
    seq: int = 1
    closed: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    # The item's outbox entries after `created`: (event, previous leader, the leader's maximum (audit)).
    outbox: list[tuple[dict[str, Any], str | None, str | None]] = field(default_factory=list)
    # What each bidder last sent as a maximum (the test's own knowledge, to drive raises).
    sent: dict[str, int] = field(default_factory=dict)
    raised: bool = False

    def __post_init__(self) -> None:
        s = self.shape
        self.book = Book(s.starting_price, s.ladder, s.reserve, s.buy_now_price)

    def resolve(self, op: tuple[Any, ...]) -> tuple[str, str, int | None, int | None] | None:
        """The concrete call of `op` (bidder, amount, max), or None to skip it (a bid with nothing)."""
        if op[0] == "buy":
            return ("buy", op[1], None, None)
        if op[0] == "raise":
            who = self.book.leader or "ann"
            return ("bid", who, None, self.sent.get(who, self.book.price or 0) + op[1])
        if op[0] == "reserve":
            return ("bid", op[1], None, max(1, (self.shape.reserve or 100) + op[2]))
        if op[0] == "match":
            leader = self.book.leader or ""
            who = op[1] if op[1] != leader else BIDDERS[(BIDDERS.index(op[1]) + 1) % len(BIDDERS)]
            top = max(1, self.sent.get(leader, self.book.price or 1) + op[2])
            return ("bid", who, top, None) if op[3] else ("bid", who, None, top)
        _, who, amount, top = op
        if amount is None and top is None:
            return None
        return ("bid", who, amount, top)

    def apply(self, call: tuple[str, str, int | None, int | None]) -> Answer:
        kind, who, amount, top = call
        if kind == "buy":
            return self._buy(who)
        if self.closed:
            return ("AUCTION_CLOSED",)
        decision = place(self.book, who, amount, top)
        if decision.too_low is not None:
            return ("BID_TOO_LOW", decision.too_low)
        self.sent[who] = max(self.sent.get(who, 0), top if top is not None else amount or 0)
        if who == self.book.leader and amount is None:
            self.raised = True
        own_seq, leader = None, self.book.leader or ""
        if len(decision.events) > 1 and decision.events[-1].bidder == leader:
            leader = ""  # a named bid that the leader's maximum answers in the same step outbids nobody
        for index, event in enumerate(decision.events):
            self.seq += 1
            self.events.append(
                self._bid(self.seq, event.bidder, event.amount, event.min_next_bid, event.proxy)
            )
            audit = None if event.leader_max is None else str(event.leader_max)
            self.outbox.append((self.events[-1], leader, audit))
            leader = event.bidder
            if index == decision.own:
                own_seq = self.seq
        self.book = book = decision.book
        if not decision.events:  # a raise: the outbox alone hears of it
            raised = {"type": "max_raised", "item_id": self.item_id, "seq": self.seq, "bidder": who,
                      "max_amount": book.leader_max}  # fmt: skip
            self.outbox.append((raised, None, None))
        own = decision.events[decision.own].amount if decision.own is not None else book.price
        seq = own_seq if own_seq is not None else self.seq
        return ("A", seq, own, book.price, book.leader, book.bid_count, decision.leading)

    def _buy(self, who: str) -> Answer:
        if self.closed:
            return ("AUCTION_CLOSED",)
        if not buy_now(self.book) or self.shape.buy_now_price is None:
            return ("BUY_NOW_UNAVAILABLE",)
        price = self.shape.buy_now_price
        self.closed = True
        step = increment_at(self.shape.ladder, price)
        self.events.append(self._bid(self.seq + 1, who, price, price + step, False))
        self.events.append(
            {"type": "closed", "item_id": self.item_id, "seq": self.seq + 2, "outcome": "sold", "winner": who,
             "final_price": price, "bid_count": 1}
        )  # fmt: skip
        self.outbox += [(self.events[-2], "", None), (self.events[-1], None, None)]
        self.seq += 2
        self.book = Book(self.book.starting_price, self.book.ladder, price=price, leader=who, bid_count=1)
        return ("A", self.seq - 1, price, price, who, 1, True)

    def _bid(self, seq: int, who: str, amount: int, min_next: int, proxy: bool) -> dict[str, Any]:
        event = {
            "type": "bid", "item_id": self.item_id, "seq": seq, "bid_id": f"{self.item_id}.{seq}",
            "bidder": who, "amount": amount, "currency": "USD", "current_price": amount,
            "min_next_bid": min_next,
        }  # fmt: skip
        if proxy:
            event["proxy"] = True
        return event


# -- The model alone -------------------------------------------------------------------------------


@settings(max_examples=1700, deadline=None)
@given(sequence=sequences)
def test_the_model_keeps_its_invariants_and_the_rule_over_all_maximums(
    sequence: tuple[Shape, list[tuple[Any, ...]]],
) -> None:
    """Prices never fall and never pass the leader's maximum; the leader holds the highest maximum
    (the earlier on a tie); without raises the price is the rule applied to all maximums at once."""
    shape, operations = sequence
    model = ModelAuction("lot", shape)
    tops: dict[str, tuple[int, int]] = {}  # bidder -> (their maximum, when they reached it)
    named: list[int] = []
    for step, op in enumerate(operations):
        call = model.resolve(op)
        if call is None:
            continue
        before = model.book.price
        answer = model.apply(call)
        if answer[0] != "A" or call[0] == "buy":
            continue
        _, who, amount, top = call
        mine = top if top is not None else amount
        assert mine is not None
        if mine > tops.get(who, (-1, 0))[0]:
            tops[who] = (mine, step)
        if amount is not None:
            named.append(amount)
        book = model.book
        assert book.price is not None
        assert before is None or book.price >= before
        assert book.price <= book.top
        best = max(tops.values(), key=lambda entry: (entry[0], -entry[1]))
        assert tops[book.leader or ""] == best
        assert book.top == best[0]
    if model.closed or model.raised or not tops or not _rising(shape.ladder):
        return
    ranked = sorted((top for top, _ in tops.values()), reverse=True)
    expected = max([shape.starting_price, *named])
    if len(ranked) > 1:
        second = ranked[1]
        expected = max(expected, min(ranked[0], second + increment_at(shape.ladder, second)))
    if shape.reserve is not None and ranked[0] >= shape.reserve:
        expected = max(expected, shape.reserve)
    assert model.book.price == expected


def _rising(ladder: tuple[tuple[int, int], ...]) -> bool:
    """A ladder whose increments never shrink (eBay's): where "second maximum + its increment" rises."""
    return all(a[1] <= b[1] for a, b in itertools.pairwise(ladder))


# -- The real bid step -----------------------------------------------------------------------------


@dataclass
class Stores:
    redis: Redis
    by_strategy: dict[str, ItemStore]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stores(redis_server: RedisServer) -> AsyncIterator[Stores]:
    """One item store per strategy on the session's Redis (no gRPC: the answers are the store's)."""
    config = BidderSettings(redis_url=redis_server.url, closer=False)
    redis = Redis.from_url(redis_server.url)
    try:
        yield Stores(
            redis,
            {
                "lua": ItemStore(redis, config, LuaBidWriter(redis, config)),
                "watch": ItemStore(redis, config, WatchBidWriter(redis, config)),
            },
        )
    finally:
        await redis.aclose()


Call = tuple[str, str, int | None, int | None]


async def _answer(store: ItemStore, item_id: str, call: Call) -> Answer:
    kind, who, amount, top = call
    try:
        if kind == "buy":
            result: AcceptedBid = await store.buy_now(item_id, who)
        else:
            result = await store.place_bid(item_id, who, amount or 0, "", top)
    except BidRejected as exc:
        return _refusal(exc)
    return _accepted(result)


async def _batch_answers(store: ItemStore, item_id: str, calls: list[Call]) -> list[Answer]:
    """Consecutive bids as one PlaceBids-like call: one Lua call applies them in order."""
    results = await store.place_bids(
        [BidRequest(item_id, who, amount or 0, "", top) for _, who, amount, top in calls]
    )
    answers: list[Answer] = []
    for result in results:
        if isinstance(result, BidRejected):
            answers.append(_refusal(result))
        else:
            assert isinstance(result, AcceptedBid), result
            answers.append(_accepted(result))
    return answers


def _refusal(exc: BidRejected) -> Answer:
    return (exc.reason.value,) if exc.min_next_bid is None else (exc.reason.value, exc.min_next_bid)


def _accepted(result: AcceptedBid) -> Answer:
    live = result.item.live
    return ("A", result.seq, result.amount, live.current_price, live.highest_bidder, live.bid_count,
            result.leading)  # fmt: skip


async def _run(
    redis: Redis, store: ItemStore, shape: Shape, operations: list[tuple[Any, ...]], *, batched: bool
) -> None:
    since_s, _ = await redis.time()
    view = await store.create_item(
        "Lot", "", "USD", shape.starting_price, shape.ladder[0][1], None, now_ms() + 3_600_000,
        reserve_price=shape.reserve, increments=shape.ladder if len(shape.ladder) > 1 else None,
        buy_now_price=shape.buy_now_price,
    )  # fmt: skip
    item_id = view.static.id
    model = ModelAuction(item_id, shape)
    pending: list[tuple[Call, Answer]] = []
    for op in operations:
        call = model.resolve(op)
        if call is None:
            continue
        expected = model.apply(call)
        if batched and call[0] == "bid":
            pending.append((call, expected))
            continue
        await _flush(store, item_id, pending)
        assert await _answer(store, item_id, call) == expected, (call, model.book)
    await _flush(store, item_id, pending)
    final = await store.get_item(item_id)
    book = model.book
    assert (final.live.current_price, final.live.highest_bidder) == (book.price, book.leader)
    assert (final.live.bid_count, final.live.seq) == (book.bid_count, model.seq)
    assert final.min_next_bid == book.min_next_bid
    entries: Any = await redis.xrange(store.keys_for(item_id).events)
    got = [orjson.loads(fields[b"e"]) for _, fields in entries][1:]
    for event in got:
        event.pop("placed_at", None)
        event.pop("closed_at", None)
    assert got == model.events
    assert await _outbox(redis, store, item_id, since_s) == model.outbox


async def _outbox(
    redis: Redis, store: ItemStore, item_id: str, since_s: int
) -> list[tuple[dict[str, Any], str | None, str | None]]:
    """The item's outbox entries after `created` (times dropped), with their `p` and `m` fields."""
    entries: Any = await redis.xrange(store.keys_for(item_id).outbox, f"{since_s * 1000}-0", "+")
    found: list[tuple[dict[str, Any], str | None, str | None]] = []
    for _, fields in entries:
        event = orjson.loads(fields[b"e"])
        if event["item_id"] != item_id or event["type"] == "created":
            continue
        for moment in ("placed_at", "closed_at", "raised_at"):
            event.pop(moment, None)
        leader, top = fields.get(b"p"), fields.get(b"m")
        found.append((event, leader.decode() if leader is not None else None, top and top.decode()))
    return found


async def _flush(store: ItemStore, item_id: str, pending: list[tuple[Call, Answer]]) -> None:
    if pending:
        calls = [call for call, _ in pending]
        assert await _batch_answers(store, item_id, calls) == [answer for _, answer in pending], calls
        pending.clear()


@pytest.mark.parametrize("strategy", ["lua", "lua-batched", "watch"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sequences, min_size=16, max_size=16))
async def test_lua_and_watch_answer_as_the_model(
    stores: Stores, strategy: str, batch: list[tuple[Shape, list[tuple[Any, ...]]]]
) -> None:
    """Answers, final item and event history of every sequence equal the model's, on both strategies."""
    store = stores.by_strategy[strategy.partition("-")[0]]
    batched = strategy.endswith("batched")
    await asyncio.gather(*(_run(stores.redis, store, shape, ops, batched=batched) for shape, ops in batch))
