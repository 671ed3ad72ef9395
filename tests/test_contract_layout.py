"""The Lua scripts spell the contract's Redis layout and reply codes: read the scripts, compare the names."""

from __future__ import annotations

import re

import pytest

from auction_contract.redis_layout import EVENT_FIELD, LEADER_MAX_FIELD, PREVIOUS_LEADER_FIELD, ItemField
from auction_contract.replies import ReplyCode
from core_bidder.scripts import lua_source

SCRIPTS = ("create_item", "place_bid", "rebuild_item", "close_item", "buy_now")
# Hash reads and writes that name fields literally: HSET key 'f', v, ... and HMGET key 'f', ...
_HASH_CALL = re.compile(r"redis\.call\('(HSET|HMGET)',\s*item_key,([^)]*)\)", re.S)
_QUOTED = re.compile(r"'([^']*)'")


def _hash_fields(source: str) -> set[str]:
    fields: set[str] = set()
    for command, rest in _HASH_CALL.findall(source):
        quoted = _QUOTED.findall(rest)
        # HSET alternates field, value; values given literally are quoted too, so take every other one.
        fields.update(quoted if command == "HMGET" else _fields_of_hset(rest))
    return fields


def _fields_of_hset(rest: str) -> list[str]:
    parts = [p.strip() for p in rest.split(",")]
    return [p.strip("'") for p in parts[0::2] if p.startswith("'")]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_hash_field_a_script_names_is_a_contract_field(script: str) -> None:
    """A field spelled in Lua but missing from `ItemField` would be a format only one side knows."""
    names = _hash_fields(lua_source(script))
    assert names <= {field.value for field in ItemField}, names - {f.value for f in ItemField}


def test_create_item_writes_every_static_field_and_place_bid_reads_the_rules() -> None:
    """The item hash as created holds every field but the leader's and the leader's hidden maximum, which
    bids write, and the result's, which the close writes."""
    created = _hash_fields(lua_source("create_item"))
    result = {
        ItemField.OUTCOME.value,
        ItemField.WINNER.value,
        ItemField.FINAL_PRICE.value,
        ItemField.CLOSED_MS.value,
    }
    assert (
        created
        == {f.value for f in ItemField}
        - {ItemField.PRICE.value, ItemField.HIGHEST_BIDDER.value, ItemField.LEADER_MAX.value}
        - result
    )
    assert result <= _hash_fields(lua_source("close_item"))
    placed = _hash_fields(lua_source("place_bid"))
    assert {ItemField.PRICE.value, ItemField.HIGHEST_BIDDER.value, ItemField.SEQ.value} <= placed
    assert {ItemField.LEADER_MAX.value, ItemField.INCREMENTS.value} <= placed
    assert result <= _hash_fields(lua_source("buy_now"))


def test_no_item_view_reads_the_hidden_maximum() -> None:
    """The leader's maximum stays inside the bid step: the store never reads it into an item."""
    from core_bidder import store

    assert ItemField.LEADER_MAX.value not in store._FIELDS


@pytest.mark.parametrize("script", SCRIPTS)
def test_stream_entries_use_the_contract_event_field(script: str) -> None:
    """Every XADD writes the event under `EVENT_FIELD`, the field the fan-out and the relay read."""
    adds = re.findall(r"'XADD',[^\n]*", lua_source(script))
    assert adds
    for add in adds:
        assert f"'{EVENT_FIELD}'" in add, add


def test_place_bid_names_the_previous_leader_in_the_bid_outbox_entry() -> None:
    """The relay's `outbid` notice reads the leader before a bid from its outbox entry's second field;
    the archive (audit only) reads the leader's maximum from a third, on the proxy path."""
    outbox_adds = re.findall(r"'XADD', outbox_key,[^\n]*", lua_source("place_bid"))
    bid_add = [add for add in outbox_adds if "event," in add]
    plain = f"'XADD', outbox_key, '*', '{EVENT_FIELD}', event, '{PREVIOUS_LEADER_FIELD}', leader"
    assert bid_add == [f"{plain}, '{LEADER_MAX_FIELD}', string.format('%d', top))", f"{plain})"]


def test_the_leader_maximum_never_reaches_the_history_or_the_live_channel() -> None:
    """Only outbox entries name the maximum: the history XADD and PUBLISH carry the event JSON alone,
    and the raise's record goes to the outbox only."""
    source = lua_source("place_bid")
    history_adds = re.findall(r"'XADD', events_key,[^\n]*", source)
    assert history_adds
    assert all(add.endswith(f"'{EVENT_FIELD}', event)") or "notice)" in add for add in history_adds)
    assert "max_raised" not in "".join(history_adds)
    assert re.findall(r"redis\.call\(publish,[^\n]*", source) == [
        "redis.call(publish, channel, event)", "redis.call(publish, channel, notice)"
    ]  # fmt: skip


def test_place_bid_answers_only_contract_reply_codes() -> None:
    """The reply arrays' first elements are exactly the `ReplyCode` values (and all of them appear)."""
    codes = set(re.findall(r"\{'([A-Z])'", lua_source("place_bid")))
    assert codes == {code.value for code in ReplyCode} - {ReplyCode.BUY_NOW_UNAVAILABLE.value}
    bought = set(re.findall(r"\{'([A-Z])'", lua_source("buy_now")))
    assert ReplyCode.BUY_NOW_UNAVAILABLE.value in bought
    assert bought <= {code.value for code in ReplyCode}


def test_every_services_not_found_is_the_contracts() -> None:
    """One class to catch for a missing item, whichever service says so; each keeps its own message."""
    from archiver.errors import ItemNotFound as ArchiveNotFound
    from auction_contract.errors import ItemNotFound
    from core_bidder.errors import ItemNotFound as BidderNotFound
    from fanout.errors import ItemNotFound as FanoutNotFound

    for error in (BidderNotFound("lot-1"), FanoutNotFound("lot-1"), ArchiveNotFound("lot-1")):
        assert isinstance(error, ItemNotFound)
        assert error.item_id == "lot-1"
        assert "'lot-1'" in str(error)
