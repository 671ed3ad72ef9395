"""Every component SIGKILLed in turn under one bidding war, on the platform as `make up` runs it.

`run_chaos` starts `python -m devstack up` (supervised: whatever dies is restarted) in a state
directory, starts the war (`chaos_war`: SDK bidders with their Idempotency-Keys and retries, SDK viewers,
lots that close all along), lets it settle, then for each target of `chaos_kills.TARGETS` in turn: SIGKILL,
wait until the supervisor (or uvicorn, for an edge worker) has it running again, the edge is ready and a
bid is accepted again, then until the history and the archive hold every bid acknowledged so far (what
is missing then is counted lost for that kill), and a settle period of war before the next kill. At the
end no new lots are opened, every lot closes, and the whole record is checked (`chaos_check`).

Per kill (`KillFigures`): the write path's unavailability (the longest gap between two 201 answers from
the kill to the next kill), how long until the stack was back and until the archive held everything,
the calls that failed after the SDK's retries, lost and duplicated bids, restarts. The chaos test
(tests/test_chaos.py) and experiment 3d (`exp_chaos`) both run this.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auction_bench import chaos_check
from auction_bench.chaos_kills import (
    TARGETS,
    Kill,
    Target,
    edge_workers,
    kill,
    restarts_since,
    status,
    wait_back,
)
from auction_bench.chaos_records import read_all, read_archive
from auction_bench.chaos_war import ChaosWar, WarLog, WarSize
from auction_bench.stack_war import running_stack
from devstack.servers import PostgresServer


@dataclass(frozen=True)
class ChaosScale:
    war: WarSize
    settle: float  # seconds of war before the first kill and after each recovery
    back_within: float = 120.0
    archived_within: float = 90.0


SCALES = {
    "full": ChaosScale(WarSize(bidders=48, open_lots=4, lifetime=8.0, viewers_per_lot=4), settle=4.0),
    "quick": ChaosScale(WarSize(bidders=24, open_lots=3, lifetime=6.0, viewers_per_lot=2), settle=2.5),
    "tiny": ChaosScale(
        WarSize(bidders=6, open_lots=2, lifetime=4.0, viewers_per_lot=1, pause=0.3), settle=1.0
    ),
}


@dataclass
class KillFigures:
    component: str
    unavailable_s: float  # longest gap between two 201s from the kill to the next kill
    back_s: float  # kill to: replaced, everything running, edge ready, a bid accepted again
    archived_s: float  # kill to: history and archive hold every bid acknowledged so far
    accepted: int  # 201s from the kill to the next kill
    resends: int  # sends of a key already sent (the SDK's retries, and ours after a failed call)
    failed_calls: int  # calls that failed after the SDK's retries (their keys were sent again)
    lost: int
    duplicated: int
    restarts: int
    restarted: dict[str, int]  # per process, to see whether anything else went down with it
    faults: list[str] = field(default_factory=list)


@dataclass
class ChaosFigures:
    kills: list[KillFigures]
    baseline_gap_s: float  # the longest gap between two 201s before the first kill
    items: int
    viewers: int
    requests: int
    accepted: int
    resends: int
    failed_calls: int
    create_failures: int
    unresolved: int  # keys whose outcome was still unknown when the war ended
    unexpected: list[str]
    lost: list[str]
    duplicated: list[str]
    closes: list[str]
    viewer_faults: list[str]

    @property
    def exact(self) -> bool:
        """Nothing lost, nothing twice, every close and every viewer right, every outcome known."""
        wrong = (self.lost, self.duplicated, self.closes, self.viewer_faults, self.unexpected)
        return (
            not any(wrong)
            and self.unresolved == 0
            and all(not k.lost and not k.duplicated for k in self.kills)
        )


def longest_gap(successes: list[float], start: float, end: float) -> float:
    """The longest time without a 201 in [start, end]: from `start` to the first, between two, to `end`."""
    points = [start, *sorted(t for t in successes if start < t < end), end]
    return max(later - earlier for earlier, later in itertools.pairwise(points))


class _Platform:
    def __init__(self, state: Path, war: ChaosWar, endpoints: dict[str, str], scale: ChaosScale) -> None:
        self.state = state
        self.war = war
        self.redis_url = endpoints["redis"]
        self.dsn = endpoints["postgres"]
        self.edge_url = war.edge_url
        self.scale = scale
        self.reported: set[str] = set()

    async def accepted_again(self, after: float, within: float) -> None:
        deadline = time.monotonic() + within
        while not any(t > after for t in self.war.log.successes[-50:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no bid accepted within {within:.0f} s of the restart")
            await asyncio.sleep(0.05)

    async def archived(self, within: float) -> tuple[list[str], list[str]]:
        """Wait until history and archive hold every bid acknowledged so far; what was still not there
        (lost) and what was twice, each reported only the first time it is seen."""
        deadline = time.monotonic() + within
        while True:
            acknowledged = list(self.war.log.accepted.values())
            try:
                records = await read_all(
                    self.redis_url, self.dsn, self.edge_url, self.war.item_ids(), states=False
                )
                missing = chaos_check.lost(acknowledged, records)
                twice = chaos_check.duplicated(self.war.log, records, complete=False)
            except (OSError, TimeoutError) as exc:  # a server still coming back
                missing, twice = [f"records unreadable: {exc!r}"], []
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        return self._new(missing), self._new(twice)

    def _new(self, faults: list[str]) -> list[str]:
        fresh = [fault for fault in faults if fault not in self.reported]
        self.reported.update(fresh)
        return fresh


@dataclass
class Recovery:
    """How the platform came back from one kill."""

    done: Kill
    back_s: float
    archived_s: float
    missing: list[str]
    twice: list[str]
    restarted: dict[str, int]


async def _one_kill(platform: _Platform, target: Target, progress: Callable[[str], None]) -> Recovery:
    done = kill(platform.state, target)
    back = await wait_back(platform.state, done, platform.edge_url, platform.scale.back_within)
    await platform.accepted_again(back, platform.scale.back_within)
    back_s = time.monotonic() - done.at
    missing, twice = await platform.archived(platform.scale.archived_within)
    archived_s = time.monotonic() - done.at
    await asyncio.sleep(platform.scale.settle)
    restarted = restarts_since(platform.state, done)
    progress(
        f"  chaos: {target.component} killed; back after {back_s:.1f} s, archive complete after "
        f"{archived_s:.1f} s; restarts {restarted}; lost {len(missing)}, twice {len(twice)}"
    )
    return Recovery(done, back_s, archived_s, missing, twice, restarted)


def _figures(log: WarLog, recoveries: list[Recovery], war_end: float) -> list[KillFigures]:
    rows = []
    for index, seen in enumerate(recoveries):
        start = seen.done.at
        end = recoveries[index + 1].done.at if index + 1 < len(recoveries) else war_end
        rows.append(
            KillFigures(
                component=seen.done.target.component,
                unavailable_s=longest_gap(log.successes, start, end),
                back_s=seen.back_s,
                archived_s=seen.archived_s,
                accepted=sum(start <= t < end for t in log.successes),
                resends=sum(start <= t < end for t in log.resends),
                failed_calls=sum(start <= t < end for t, _ in log.failed_calls),
                lost=len(seen.missing),
                duplicated=len(seen.twice),
                restarts=sum(seen.restarted.values()),
                restarted=seen.restarted,
                faults=[*seen.missing, *seen.twice],
            )
        )
    return rows


async def run_chaos(
    state: Path,
    scale: ChaosScale,
    progress: Callable[[str], None] = print,
    targets: tuple[Target, ...] = TARGETS,
) -> ChaosFigures:
    """The whole run in `state` (made if missing; the stack's data and logs stay there)."""
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True)
    try:
        async with running_stack(state) as stack:
            endpoints: dict[str, str] = json.loads((state / "endpoints.json").read_text())
            edge_url = f"http://127.0.0.1:{stack.edge_port}"
            war = ChaosWar(edge_url, endpoints["fanout"], stack.secret, scale.war)
            platform = _Platform(state, war, endpoints, scale)
            size = scale.war
            progress(
                f"  chaos: {size.bidders} bidders over {size.open_lots} lots at a time, "
                f"{size.viewers_per_lot} viewers each"
            )
            await war.start()
            started = time.monotonic()
            await asyncio.sleep(scale.settle)
            first_kill = time.monotonic()
            recoveries = [
                await _one_kill(platform, target, progress) for target in applicable(state, targets, progress)
            ]
            war_end = time.monotonic()
            await war.finish(within=size.lifetime * 3 + scale.back_within)
            missing, twice = await platform.archived(scale.archived_within)
            await _wait_results(platform, scale.archived_within)
            records = await read_all(platform.redis_url, platform.dsn, edge_url, war.item_ids(), states=True)
    finally:
        PostgresServer(state / "postgres").remove_cluster()
    log = war.log
    return ChaosFigures(
        kills=_figures(log, recoveries, war_end),
        baseline_gap_s=longest_gap(log.successes, started + scale.settle / 4, first_kill),
        items=len(war.lots),
        viewers=len(war.viewers),
        requests=log.requests,
        accepted=len(log.accepted),
        resends=len(log.resends),
        failed_calls=len(log.failed_calls),
        create_failures=log.create_failures,
        unresolved=len(log.unresolved),
        unexpected=log.unexpected,
        lost=[*missing, *chaos_check.lost(log.accepted.values(), records)],
        duplicated=[*twice, *chaos_check.duplicated(log, records, complete=True)],
        closes=chaos_check.closes(war.item_ids(), log, records),
        viewer_faults=chaos_check.viewers(war.viewers, records),
    )


def applicable(state: Path, targets: tuple[Target, ...], progress: Callable[[str], None]) -> list[Target]:
    """The targets this stack has: an edge on one core runs no worker processes (`EDGE_WORKERS` 1)."""
    workers = edge_workers(int(status(state)["edge"]["pid"]))
    if not workers and any(target.worker for target in targets):
        progress("  chaos: the edge runs no worker processes here (one core): no edge worker to kill")
    return [target for target in targets if workers or not target.worker]


async def _wait_results(platform: _Platform, within: float) -> None:
    """Until the archive holds a result for every lot (each closed within a second of its end)."""
    deadline = time.monotonic() + within
    ids = platform.war.item_ids()
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, TimeoutError):
            _, results = await read_archive(platform.dsn, ids)
            if all(results.get(item_id) for item_id in ids):
                return
        await asyncio.sleep(0.3)
