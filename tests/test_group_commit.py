"""The group-commit queue: lone items go at once, concurrent ones share calls, results keep their order."""

from __future__ import annotations

import asyncio

import pytest

from auction_common.group_commit import GroupCommit


class Recorder:
    def __init__(self, delay: float = 0.01, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.running = 0
        self.most_running = 0

    async def commit(self, batch: list[int]) -> list[int]:
        self.batches.append(batch)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in batch:
                raise RuntimeError("downstream failed")
            return [x * 10 for x in batch]
        finally:
            self.running -= 1


async def test_a_lone_item_is_committed_at_once_alone() -> None:
    """No timer: one item goes out immediately, in a batch of one."""
    recorder = Recorder()
    group = GroupCommit(recorder.commit, max_batch=8, max_in_flight=1)
    assert await group.submit(7) == 70
    assert recorder.batches == [[7]]


async def test_concurrent_items_share_calls_and_keep_their_results() -> None:
    """While a call is out, items queue and go together; each caller gets its own result."""
    recorder = Recorder()
    group = GroupCommit(recorder.commit, max_batch=64, max_in_flight=1)
    results = await asyncio.gather(*(group.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert recorder.batches[0] == [0]
    assert recorder.batches[1] == list(range(1, 50))
    assert [x for batch in recorder.batches for x in batch] == list(range(50))


async def test_batches_respect_max_batch_and_max_in_flight() -> None:
    """Never more than max_batch items per call, never more than max_in_flight calls at once."""
    recorder = Recorder()
    group = GroupCommit(recorder.commit, max_batch=5, max_in_flight=2)
    await asyncio.gather(*(group.submit(i) for i in range(40)))
    assert max(len(b) for b in recorder.batches) == 5
    assert recorder.most_running == 2


async def test_a_failed_call_fails_only_its_own_items() -> None:
    """Every item of the failed batch gets the exception; later batches still succeed."""
    recorder = Recorder(fail_on=0)
    group = GroupCommit(recorder.commit, max_batch=64, max_in_flight=1)
    first = group.submit(0)
    rest = [group.submit(i) for i in range(1, 5)]
    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.gather(*rest) == [10, 20, 30, 40]
    await group.drain()


async def test_items_of_one_key_are_never_in_two_commits_at_once() -> None:
    """With a key, a key's items are committed in submission order; other keys still overlap."""
    recorder = Recorder()
    group: GroupCommit[int, int] = GroupCommit(
        recorder.commit, max_batch=2, max_in_flight=4, key=lambda x: x % 2
    )
    results = await asyncio.gather(*(group.submit(i) for i in range(12)))
    assert results == [i * 10 for i in range(12)]
    for parity in (0, 1):
        order = [x for batch in recorder.batches for x in batch if x % 2 == parity]
        assert order == sorted(order)
    assert recorder.most_running >= 2


async def test_an_exception_in_an_items_place_fails_that_item_alone() -> None:
    """A commit may fail single items (one Redis node down) while the rest of its batch succeeds."""

    async def commit(batch: list[int]) -> list[int | Exception]:
        await asyncio.sleep(0.01)
        return [ValueError(f"item {x} failed") if x % 2 else x * 10 for x in batch]

    group: GroupCommit[int, int] = GroupCommit(commit, max_batch=64, max_in_flight=1)
    futures = [group.submit(x) for x in range(6)]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [
        0, "item 1 failed", 20, "item 3 failed", 40, "item 5 failed",
    ]  # fmt: skip


@pytest.mark.parametrize("keyed", [False, True])
async def test_weight_bounds_a_batch_by_the_sum_of_weights(keyed: bool) -> None:
    """With `weight`, `max_batch` counts weight (an item's bids), not items; a heavy item goes alone."""
    recorder = Recorder()
    group: GroupCommit[int, int] = GroupCommit(
        recorder.commit,
        max_batch=5,
        max_in_flight=1,
        key=(lambda x: 0) if keyed else None,
        weight=lambda x: x,
    )
    results = await asyncio.gather(*(group.submit(w) for w in [1, 3, 2, 4, 9, 1, 1]))
    assert results == [10, 30, 20, 40, 90, 10, 10]
    assert recorder.batches == [[1], [3, 2], [4], [9], [1, 1]]
