"""Correctness verdicts computed from what a run observed, never assumed.

A bidding war is correct when the accepted bids have unique, gap-free seqs, amounts that rise with seq
by at least the increment, and the item's final state equals the highest accepted bid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str]

    def __str__(self) -> str:
        return "correct" if self.ok else "WRONG: " + "; ".join(self.reasons)


def war_verdict(
    accepted: list[tuple[int, int]], final: dict[str, object], increment: int, first_seq: int = 2
) -> Verdict:
    """`accepted`: (seq, amount) of every 201; `final`: the item as GET /items/{id} returns it."""
    reasons: list[str] = []
    ordered = sorted(accepted)
    seqs = [seq for seq, _ in ordered]
    if len(set(seqs)) != len(seqs):
        reasons.append("a seq was given to two accepted bids")
    if seqs and seqs != list(range(first_seq, first_seq + len(seqs))):
        reasons.append("accepted seqs have gaps")
    amounts = [amount for _, amount in ordered]
    if any(later < earlier + increment for earlier, later in itertools.pairwise(amounts)):
        reasons.append("an accepted amount did not beat the previous one by the increment")
    if ordered:
        top_seq, top_amount = ordered[-1]
        expected = {"current_price": top_amount, "bid_count": len(ordered), "seq": top_seq}
        for key, value in expected.items():
            if final.get(key) != value:
                reasons.append(f"final {key} is {final.get(key)}, expected {value}")
    elif final.get("bid_count") != 0:
        reasons.append("no bid was accepted but the item counts some")
    return Verdict(not reasons, reasons)
