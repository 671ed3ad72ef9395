"""`python -m auction_bench.durability`: what each Redis durability option costs, side by side in one run.

The configurations (`CONFIGS`), each its own fresh Redis with a Lua bidder and an edge:

- `everysec`: AOF `appendfsync everysec`, the default;
- `always`: AOF `appendfsync always` (Redis fsyncs before it replies);
- `wait1`: everysec plus a replica, the bidder waiting for it after each commit batch
  (`BIDDER_REDIS_WAIT_REPLICAS=1`);
- `always+wait1`: both.

Every configuration is started first and stays up; then, at each concurrency level, the same REST war
(`rest_war`'s load generator and item shape) runs against each in turn, in an order rotated from level
to level, so that the machine's drift during the run does not favour one. Each run gets the war's
computed verdict, the bidder's own count of WAIT outcomes, and for a replica, whether it ends equal to
the primary. The data directories' file system is recorded: on tmpfs an fsync costs nothing, and the
`always` figures would mean nothing (`--data-dir` puts them elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from auction_bench.rest_war import RunFigures, create_item, drive, get_item, summarize
from auction_bench.verdict import war_verdict
from auction_contract.redis_layout import item_keys
from devstack.child import discard
from devstack.ports import LOCALHOST, free_port
from devstack.redis_server import Fsync
from devstack.servers import RedisReplica, RedisServer
from devstack.services import bidder_process, edge_process
from devstack.tokens import mint_token

INCREMENT = 10
PARTITIONS = 16  # the bidder's default; the bench reads the item's keys with it


@dataclass(frozen=True)
class Config:
    name: str
    fsync: Fsync
    replicas: int
    # What an acknowledged bid survives with this configuration.
    survives: str


CONFIGS = {
    "everysec": Config(
        "everysec", "everysec", 0, "a Redis process kill; a machine crash may lose up to about 1 s"
    ),
    "always": Config("always", "always", 0, "a Redis process kill and a machine crash"),
    "wait1": Config("wait1", "everysec", 1, "a kill; the primary's machine lost, if the replica is promoted"),
    "always+wait1": Config(
        "always+wait1", "always", 1, "a kill, a machine crash, the primary lost (replica promoted)"
    ),
}
DEFAULT_CONFIGS = ["everysec", "always", "wait1"]


@dataclass
class DurabilityRun:
    config: str
    fsync: str
    replicas: int
    survives: str
    figures: RunFigures
    # The bidder's WAIT outcomes during this run (bidder_redis_waits_total), empty without a replica.
    waits: dict[str, int]
    # With a replica: the item on the replica equals the primary's right after the run.
    replica_equal: bool | None = None


@dataclass
class _Target:
    config: Config
    redis: RedisServer
    replica: RedisReplica | None
    edge_port: int
    metrics_url: str


def filesystem_of(path: Path) -> str:
    """The file system type holding `path` (the longest mount point containing it, /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) < 3:
                continue
            mount = fields[1]
            inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fields[2]
    return kind


@contextlib.asynccontextmanager
async def _running(config: Config, root: Path, secret: str) -> AsyncIterator[_Target]:
    """The configuration's Redis (and replica), a Lua bidder and an edge, all on free ports."""
    data = root / config.name.replace("+", "-")
    async with contextlib.AsyncExitStack() as stack:
        redis = RedisServer(data / "redis", fsync=config.fsync, sink=discard)
        await redis.start()
        stack.push_async_callback(redis.stop)
        replica = None
        if config.replicas:
            replica = RedisReplica(data / "redis-replica", redis, sink=discard)
            await replica.start()
            stack.push_async_callback(replica.stop)
        bidder_port, edge_port, metrics_port = free_port(), free_port(), free_port()
        env = {"BIDDER_LOG_LEVEL": "warning", "BIDDER_METRICS_PORT": str(metrics_port)}
        if config.replicas:
            env["BIDDER_REDIS_WAIT_REPLICAS"] = str(config.replicas)
        bidder = bidder_process(
            redis.url, bidder_port, sink=discard, log_path=data / "bidder.log", extra_env=env
        )
        await bidder.start()
        stack.push_async_callback(bidder.stop)
        edge = edge_process(
            f"{LOCALHOST}:{bidder_port}", edge_port, secret, sink=discard, log_path=data / "edge.log",
            extra_env={"EDGE_LOG_LEVEL": "warning", "EDGE_WORKERS": "1"},
        )  # fmt: skip
        await edge.start()
        stack.push_async_callback(edge.stop)
        yield _Target(config, redis, replica, edge_port, f"http://{LOCALHOST}:{metrics_port}/metrics")


async def wait_outcomes(metrics_url: str) -> dict[str, int]:
    """The bidder's WAIT outcomes so far, by outcome (from its /metrics)."""
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        text = (await client.get(metrics_url)).text
    found: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith('bidder_redis_waits_total{outcome="'):
            label, value = line.split()
            found[label.split('"')[1]] = int(float(value))
    return found


async def _replica_equal(target: _Target, item_id: str) -> bool | None:
    if target.replica is None:
        return None
    key = item_keys(item_id, PARTITIONS).item
    primary, replica = Redis.from_url(target.redis.url), Redis.from_url(target.replica.url)
    try:
        return bool(await primary.hgetall(key) == await replica.hgetall(key))
    finally:
        await primary.aclose()
        await replica.aclose()


async def _war(
    target: _Target, tokens: list[str], secret: str, duration: float, warmup: float
) -> DurabilityRun:
    base_url = f"http://{LOCALHOST}:{target.edge_port}"
    item_id = await create_item(base_url, secret)
    before = await wait_outcomes(target.metrics_url)
    results = await asyncio.to_thread(
        drive, target.edge_port, f"/items/{item_id}/bid", tokens, duration, warmup, 1
    )
    figures = summarize(target.config.name, len(tokens), duration, results)
    accepted = [a for r in results for a in r.accepted]
    figures.verdict = str(war_verdict(accepted, await get_item(base_url, item_id), INCREMENT))
    after = await wait_outcomes(target.metrics_url)
    waits = {outcome: count - before.get(outcome, 0) for outcome, count in after.items()}
    config = target.config
    return DurabilityRun(
        config.name, config.fsync, config.replicas, config.survives, figures,
        {k: v for k, v in waits.items() if v}, await _replica_equal(target, item_id),
    )  # fmt: skip


async def bench(
    configs: list[str],
    levels: list[int],
    duration: float,
    warmup: float,
    data_dir: Path | None = None,
    on_run: Callable[[DurabilityRun], None] | None = None,
) -> tuple[list[DurabilityRun], str]:
    """Every configuration up at once; at each level the war against each, in rotated order.
    Returns the runs and the data directories' file system type."""
    secret = secrets.token_urlsafe(32)
    tokens = [mint_token(secret, f"bidder{i}", "bidder", ttl_seconds=7200) for i in range(max(levels))]
    runs: list[DurabilityRun] = []
    with tempfile.TemporaryDirectory(prefix="auction-durability-", dir=data_dir) as tmp:
        root = Path(tmp)
        filesystem = filesystem_of(root)
        async with contextlib.AsyncExitStack() as stack:
            targets = [await stack.enter_async_context(_running(CONFIGS[n], root, secret)) for n in configs]
            for index, level in enumerate(levels):
                turn = index % len(targets)
                for target in targets[turn:] + targets[:turn]:
                    run = await _war(target, tokens[:level], secret, duration, warmup)
                    runs.append(run)
                    if on_run is not None:
                        on_run(run)
    return runs, filesystem


def _print(run: DurabilityRun) -> None:
    f = run.figures
    print(
        f"{run.config:<14}{f.concurrency:>6}{f.rps:>10,.0f}{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}"
        f"{f.error_rate * 100:>8.2f}  {f.verdict}  waits {run.waits or '-'}  "
        f"replica equal {run.replica_equal}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs", default=",".join(DEFAULT_CONFIGS), help=f"comma list of {', '.join(CONFIGS)}"
    )
    parser.add_argument("--concurrency", default="10,64,200", help="comma list of concurrent bidders")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--data-dir", type=Path, help="where the Redis data goes (default: the temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    configs = [c for c in ns.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(unknown)}")
    levels = [int(x) for x in ns.concurrency.split(",")]
    print(
        f"{'config':<14}{'conc':>6}{'bids/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'err %':>8}  verdict", flush=True
    )
    runs, filesystem = asyncio.run(bench(configs, levels, ns.duration, ns.warmup, ns.data_dir, _print))
    print(f"Redis data on {filesystem}")
    if ns.json:
        ns.json.write_text(
            json.dumps({"filesystem": filesystem, "runs": [asdict(r) for r in runs]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
