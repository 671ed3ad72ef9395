"""Group commit in the bidder: concurrent bids from every caller share one Redis round trip and one
Lua call per item (`auction_common.group_commit` does the queueing).

A batch is grouped by item in arrival order, and an item is never in two commits at once, so bids on
one item are applied in the order they arrived (within one PlaceBids call: in request order); a bid
that arrived after another had completed lands in a later batch. Every caller gets the reply it would
have got alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Histogram

from auction_common.group_commit import GroupCommit

if TYPE_CHECKING:
    import asyncio

    from auction_contract.redis_layout import ItemKeys
    from auction_contract.replies import Reply
    from core_bidder.writers import BidInput, BidWriter, Group

BATCH_SIZE = Histogram(
    "bidder_commit_batch_bids", "Bids per group commit", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)


class GroupCommitter:
    """Queues each caller's bids for one item as one entry (one future, however many bids), weighed by
    its bids so that a commit carries at most `max_batch` bids (a larger entry goes alone)."""

    def __init__(self, writer: BidWriter, max_batch: int = 512, max_in_flight: int = 2) -> None:
        self.writer = writer
        self._group: GroupCommit[tuple[ItemKeys, list[BidInput]], list[Reply]] = GroupCommit(
            self._commit, max_batch=max_batch, max_in_flight=max_in_flight, key=_item_of, weight=_bids_in
        )

    def submit(self, keys: ItemKeys, bids: list[BidInput]) -> asyncio.Future[list[Reply]]:
        """One reply per bid of `bids` (all on `keys`' item), in order."""
        return self._group.submit((keys, bids))

    async def _commit(self, batch: list[tuple[ItemKeys, list[BidInput]]]) -> list[list[Reply] | Exception]:
        BATCH_SIZE.observe(sum(len(bids) for _, bids in batch))
        # Entries of one item, merged in submission order; each entry's span of that item's replies.
        by_item: dict[str, tuple[ItemKeys, list[BidInput], list[tuple[int, int, int]]]] = {}
        for position, (keys, bids) in enumerate(batch):
            entry = by_item.get(keys.item_id)
            if entry is None:
                entry = by_item[keys.item_id] = (keys, [], [])
            start = len(entry[1])
            entry[1].extend(bids)
            entry[2].append((position, start, start + len(bids)))
        groups: list[Group] = [(keys, bids) for keys, bids, _ in by_item.values()]
        results = await self.writer.place_groups(groups)
        replies: list[list[Reply] | Exception] = [[] for _ in batch]
        for (_, _, spans), group_replies in zip(by_item.values(), results, strict=True):
            for position, start, end in spans:
                replies[position] = (
                    group_replies if isinstance(group_replies, Exception) else group_replies[start:end]
                )
        return replies

    async def drain(self) -> None:
        await self._group.drain()


def _item_of(entry: tuple[ItemKeys, list[BidInput]]) -> str:
    """Commits are serialized per item: two Lua calls for one item never race on two connections."""
    return entry[0].item_id


def _bids_in(entry: tuple[ItemKeys, list[BidInput]]) -> int:
    return len(entry[1])
