"""The notice path's pure parts: who hears what (relay), the token rules, the handshake, the SDK decoder."""

from __future__ import annotations

import time
from typing import Any

import jwt
import orjson
import pytest
from websockets.datastructures import Headers

from auction.notices import AuctionExtended, Lost, NoticeDecoder, OtherNotice, Outbid, Won
from auction.notices_view import NoticeView
from auction_common.jwt_verify import SUB_PATTERN, HS256Verifier, TokenRejected
from auction_contract.redis_layout import bidders_key, item_keys, notice_channel, partition_of
from auction_contract.rules import BIDDER_PATTERN
from fanout.errors import Unauthenticated, closing_for
from fanout.frames import notice_frame
from fanout.http import bearer_token
from fanout.me import auth_token
from relay.notices import plan_notices

SECRET = "unit-test-secret-" + "k" * 32
NOW = float(int(time.time()))  # pyjwt checks exp and iat against the real clock


def _bid(seq: int, bidder: str, amount: int) -> dict[str, Any]:
    return {
        "type": "bid", "item_id": "lot", "seq": seq, "bidder": bidder, "amount": amount, "currency": "EUR",
        "current_price": amount, "min_next_bid": amount + 10,
    }  # fmt: skip


def _closed(seq: int, winner: str | None, price: int | None) -> dict[str, Any]:
    outcome = "sold" if winner else "no_sale"
    return {
        "type": "closed",
        "item_id": "lot",
        "seq": seq,
        "outcome": outcome,
        "winner": winner,
        "final_price": price,
    }


def _ops(args: list[str]) -> list[tuple[str, str, Any]]:
    triples = [tuple(args[i : i + 3]) for i in range(0, len(args), 3)]
    return [(op, a, orjson.loads(b) if b else b) for op, a, b in triples]


def test_a_bid_adds_its_bidder_and_tells_the_displaced_leader_only() -> None:
    [call] = plan_notices(
        [(3, _bid(2, "ann", 100), None), (3, _bid(3, "ann", 110), "ann"), (3, _bid(4, "bob", 120), "ann")],
        1000,
    )
    assert call.key == bidders_key(3, "lot") == "auction:{p3}:bidders:lot"
    assert item_keys("lot", 16).bidders == bidders_key(partition_of("lot", 16), "lot")
    assert _ops(call.args) == [
        ("A", "ann", ""),
        ("A", "ann", ""),
        ("A", "bob", ""),
        ("O", "ann", {
            "type": "outbid", "item_id": "lot", "seq": 4, "current_price": 120, "min_next_bid": 130,
            "currency": "EUR",
        }),
    ]  # fmt: skip


def test_the_close_tells_the_winner_won_and_the_others_lost_then_lets_the_set_expire() -> None:
    [call] = plan_notices([(0, _closed(9, "bob", 120), None)], 5000)
    assert _ops(call.args) == [
        ("O", "bob", {"type": "won", "item_id": "lot", "seq": 9, "final_price": 120}),
        ("M", "bob", {"type": "lost", "item_id": "lot", "seq": 9, "final_price": 120}),
        ("X", "5000", ""),
    ]
    [no_sale] = plan_notices([(0, _closed(9, None, None), None)], 5000)
    assert _ops(no_sale.args)[0] == (
        "M",
        "",
        {"type": "lost", "item_id": "lot", "seq": 9, "final_price": None},
    )


def test_an_extension_goes_to_the_whole_set_and_created_events_plan_nothing() -> None:
    ext = {"type": "extended", "item_id": "lot", "seq": 5, "ends_at": "2030-01-01T00:00:05.000Z"}
    created = {"type": "created", "item_id": "new", "seq": 1}
    [call] = plan_notices([(1, created, None), (1, ext, None)], 1)
    assert _ops(call.args) == [
        ("M", "", {"type": "extended", "item_id": "lot", "seq": 5, "ends_at": "2030-01-01T00:00:05.000Z"})
    ]


def test_a_previous_leader_that_is_no_bidder_id_is_never_notified() -> None:
    [call] = plan_notices([(0, _bid(2, "bob", 100), "x y*")], 1)
    assert [op for op, _, _ in _ops(call.args)] == ["A"]


def _token(**claims: Any) -> str:
    base: dict[str, Any] = {"sub": "ann", "role": "bidder", "iat": int(NOW), "exp": int(NOW) + 3600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET)


def test_the_verifier_keeps_the_edges_rules() -> None:
    verifier = HS256Verifier(SECRET, max_lifetime_seconds=7200, clock=lambda: NOW)
    assert verifier.verify(_token()).sub == "ann"
    assert verifier.verify(_token(role="admin")).role == "admin"
    refusals = {
        "expired": _token(exp=int(NOW) - 1),
        "longer than 7200": _token(exp=int(NOW) + 7201),
        "not valid": jwt.encode({"sub": "ann", "role": "bidder", "exp": int(NOW) + 60}, "other-" + "z" * 32),
        "role is not known": _token(role="root"),
        "subject": _token(sub="bad name"),
        "meant for this service": _token(aud="elsewhere"),
        "malformed": "",
    }  # fmt: skip
    for reason, token in refusals.items():
        with pytest.raises(TokenRejected, match=reason):
            verifier.verify(token)
    for missing in ("exp", "sub", "role"):
        with pytest.raises(TokenRejected, match="not valid"):
            verifier.verify(_token(**{missing: None}))
    none_alg = jwt.encode({"sub": "ann", "role": "bidder", "exp": int(NOW) + 60}, "", algorithm="none")
    with pytest.raises(TokenRejected):
        verifier.verify(none_alg)
    assert SUB_PATTERN.pattern == BIDDER_PATTERN.pattern


def test_the_token_comes_from_the_bearer_subprotocol_or_the_auth_message() -> None:
    assert bearer_token(Headers([("Sec-WebSocket-Protocol", "bearer, abc.def.ghi")])) == "abc.def.ghi"
    assert (
        bearer_token(Headers([("Sec-WebSocket-Protocol", "bearer"), ("Sec-WebSocket-Protocol", "t.o.k")]))
        == "t.o.k"
    )
    assert bearer_token(Headers([("Sec-WebSocket-Protocol", "chat")])) is None
    assert bearer_token(Headers()) is None
    assert auth_token('{"type": "auth", "token": "t.o.k"}') == "t.o.k"
    for bad in ("not json", '{"type": "auth"}', '{"type": "hello", "token": "x"}', "[1]"):
        with pytest.raises(Unauthenticated):
            auth_token(bad)


def test_a_refusal_is_4401_with_its_reason_within_the_close_frame_limit() -> None:
    closing = closing_for(Unauthenticated("the token has expired"))
    assert (closing.code, closing.error_code, closing.reason) == (
        4401,
        "unauthorized",
        "the token has expired",
    )
    assert len(closing_for(Unauthenticated("x" * 500)).reason.encode()) <= 123


def test_a_notice_frame_carries_server_time_and_the_channel_is_per_bidder() -> None:
    frame = orjson.loads(notice_frame(b'{"type":"won","item_id":"lot","seq":3,"final_price":5}'))
    assert frame["type"] == "won"
    assert frame["server_time"].endswith("Z")
    assert notice_channel("ann") == "auction:notices:ann"


def test_the_sdk_decoder_types_notices_and_drops_repeats() -> None:
    decoder = NoticeDecoder()
    assert decoder.feed(b'{"type":"ready","bidder":"ann","server_time":"2030-01-01T00:00:00.000Z"}') is None
    assert decoder.bidder == "ann"
    outbid = (
        b'{"type":"outbid","item_id":"lot","seq":4,"current_price":120,"min_next_bid":130,"currency":"EUR"}'
    )
    assert decoder.feed(outbid) == Outbid("lot", 4, 120, 130, "EUR")
    assert decoder.feed(outbid) is None
    assert decoder.repeats == 1
    assert decoder.feed(b'{"type":"won","item_id":"lot","seq":9,"final_price":120}') == Won("lot", 9, 120)
    assert decoder.feed(b'{"type":"lost","item_id":"x","seq":2,"final_price":null}') == Lost("x", 2, None)
    extended = decoder.feed(
        b'{"type":"extended","item_id":"lot","seq":5,"ends_at":"2030-01-01T00:00:05.000Z"}'
    )
    assert isinstance(extended, AuctionExtended)
    assert extended.ends_at.second == 5
    assert isinstance(decoder.feed(b'{"type":"watchlist","item_id":"lot","seq":6}'), OtherNotice)
    assert decoder.feed(b'{"type":"error","code":"unauthorized","detail":"no"}') is None
    assert decoder.error is not None


def test_the_cli_lines_say_what_happened_in_the_items_currency() -> None:
    view = NoticeView()
    assert view.line(Won("lot", 9, 120)) == "won lot for 120 (minor units)"
    assert view.line(Outbid("lot", 4, 120, 130, "EUR")) == (
        "outbid on lot: now 1.20 EUR; bid at least 1.30 EUR to lead again"
    )
    assert view.line(Lost("lot", 9, 150)) == "lost lot: sold to another bidder for 1.50 EUR"
    assert view.line(Lost("lamp", 3, None)) == "lost lamp: no sale"
