"""The chaos war's invariants: pure functions of what the clients saw and what the platform recorded.

Each returns a list of faults, one readable line each; an empty list is the invariant holding.
- lost: an acknowledged bid (a 201 some client saw) missing from the item's history or the archive, or
  there with another bidder, amount or seq; a hole in an item's history seqs.
- duplicated: one Idempotency-Key answered with two bid ids; a bid or seq twice in a history or the
  archive; an archived bid the history does not hold; at the end, a bid in a history that no client was
  ever told was accepted.
- closes: every lot closed exactly once (one `closed` event, the last; one result row that agrees), won by
  the highest acknowledged bid at its amount (or no sale without bids), and its state says so.
- viewers: every viewer finished at the close and was shown every event after its snapshot once, in seq
  order, exactly as archived; no reset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from auction_bench.chaos_records import Event, Records
from auction_bench.chaos_war import Accepted, ViewerLog, WarLog


def _as_event(bid: Accepted) -> Event:
    return Event(bid.seq, "bid", bid.bid_id, bid.bidder, bid.amount)


def lost(accepted: Iterable[Accepted], records: Records) -> list[str]:
    faults = []
    held = {
        where: {item_id: set(events) for item_id, events in per_item.items()}
        for where, per_item in (("history", records.history), ("archive", records.archived_bids))
    }
    for bid in accepted:
        for where, per_item in held.items():
            if _as_event(bid) not in per_item.get(bid.item_id, set()):
                faults.append(f"{bid.bid_id} ({bid.bidder} {bid.amount}, seq {bid.seq}) not in the {where}")
    for item_id, history in records.history.items():
        seqs = sorted(event.seq for event in history)
        if history and seqs != list(range(1, len(seqs) + 1)):
            faults.append(f"{item_id}: history seqs are not 1..{len(seqs)}: {seqs}")
    return faults


def duplicated(log: WarLog, records: Records, *, complete: bool) -> list[str]:
    """`complete`: the war is over, so a bid no client heard of cannot be one whose answer is on its way."""
    faults = [f"key {key} answered with bid ids {sorted(ids)}" for key, ids in log.duplicate_keys().items()]
    for where, per_item in (("history", records.history), ("archive", records.archived_bids)):
        for item_id, events in per_item.items():
            for seq, count in Counter(event.seq for event in events).items():
                if count > 1:
                    faults.append(f"{item_id}: seq {seq} {count} times in the {where}")
            bid_ids = Counter(event.bid_id for event in events if event.kind == "bid")
            faults += [
                f"{bid_id} {count} times in the {where}" for bid_id, count in bid_ids.items() if count > 1
            ]
    for item_id, bids in records.archived_bids.items():
        held = set(records.history.get(item_id, []))
        faults += [f"{bid.bid_id} archived, not in the history" for bid in bids if bid not in held]
    if complete:
        acknowledged = {_as_event(bid) for bid in log.accepted.values()}
        for events in records.history.values():
            faults += [
                f"{event.bid_id} ({event.who} {event.amount}) placed, never acknowledged"
                for event in events
                if event.kind == "bid" and event not in acknowledged
            ]
    return faults


def closes(item_ids: Iterable[str], log: WarLog, records: Records) -> list[str]:
    by_item: dict[str, list[Accepted]] = {}
    for bid in log.accepted.values():
        by_item.setdefault(bid.item_id, []).append(bid)
    faults = []
    for item_id in item_ids:
        bids = by_item.get(item_id, [])
        top = max(bids, key=lambda bid: bid.amount, default=None)
        winner, price = (top.bidder, top.amount) if top else ("", -1)
        history = records.history.get(item_id, [])
        closed = [event for event in history if event.kind == "closed"]
        if len(closed) != 1 or history[-1] is not closed[0]:
            faults.append(f"{item_id}: {len(closed)} closed events in its history (must be 1, the last)")
            continue
        close = closed[0]
        if (close.who, close.amount) != (winner, price):
            faults.append(
                f"{item_id}: closed to {close.who} at {close.amount}, the top bid is {winner} {price}"
            )
        rows = records.results.get(item_id, [])
        if [(row.seq, row.winner, row.final_price) for row in rows] != [(close.seq, close.who, close.amount)]:
            faults.append(f"{item_id}: archived results {rows} do not match its close {close}")
        state = records.states.get(item_id, {})
        result = state.get("result") or {}
        seen = (
            state.get("status"),
            result.get("winner") or "",
            result.get("final_price"),
            state.get("bid_count"),
        )
        want = ("closed", winner, None if price < 0 else price, len(bids))
        if seen != want or state.get("seq") != close.seq:
            faults.append(
                f"{item_id}: state {seen} (seq {state.get('seq')}), expected {want} (seq {close.seq})"
            )
    return faults


def viewers(logs: Iterable[ViewerLog], records: Records) -> list[str]:
    faults = []
    for viewer in logs:
        label = f"viewer of {viewer.item_id} (snapshot {viewer.snapshot_seq}, {viewer.connects} connects)"
        if viewer.error or not viewer.finished or viewer.snapshot_seq is None:
            faults.append(f"{label}: did not finish at the close ({viewer.error or 'still open'})")
            continue
        closes_ = [
            Event(row.seq, "closed", "", row.winner, row.final_price)
            for row in records.results.get(viewer.item_id, [])
        ]
        archived = sorted([*records.archived_bids.get(viewer.item_id, []), *closes_])
        expected = [event for event in archived if event.seq > viewer.snapshot_seq]
        if viewer.resets:
            faults.append(f"{label}: {viewer.resets} resets")
        if viewer.events != expected:
            shown = [event.seq for event in viewer.events]
            missing = sorted({event.seq for event in expected} - set(shown))
            repeated = sorted(seq for seq, count in Counter(shown).items() if count > 1)
            order = "in order" if shown == sorted(shown) else "OUT OF ORDER"
            faults.append(f"{label}: missing {missing}, repeated {repeated}, {order}, or not as archived")
    return faults
