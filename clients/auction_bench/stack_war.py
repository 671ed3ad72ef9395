"""`python -m auction_bench.stack_war`: the bidding war against the platform as `make up` runs it.

It starts `python -m devstack up` (its own Redis, NATS and PostgreSQL; the bidder with its closer, the
relay, the archiver, the edge with its default workers, the fan-out) on free ports, measures every
component's CPU while nothing happens (the idle cost), then runs the lean HTTP load generator against
the edge at each concurrency level on a fresh item and reports bids/s, latency, the verdict and the
CPU microseconds per bid of each component, so the run names its bottleneck. Figures are comparable
with `rest_war`'s from the same run (same load generator, same item shape).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from auction_bench.cpu_meter import CpuMeter, per_unit
from auction_bench.rest_war import RunFigures, create_item, drive, get_item, summarize
from auction_bench.verdict import war_verdict
from devstack.ports import free_port
from devstack.tokens import mint_token

HOST = "127.0.0.1"
# How each component's process is recognised among `devstack up`'s children (by its command line).
COMPONENTS = {
    "edge": "edge_gateway",
    "bidder": "core_bidder",
    "relay": "-m relay",
    "archiver": "-m archiver",
    "fanout": "-m fanout",
    "redis": "redis-server",
    "nats": "nats-server",
    "postgres": "postgres",
}


@dataclass
class Stack:
    edge_port: int
    secret: str
    components: dict[str, list[int]]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def classify(root: int) -> dict[str, list[int]]:
    """The direct children of `devstack up` by component (each is measured with its descendants)."""
    components: dict[str, list[int]] = {name: [] for name in COMPONENTS}
    for child in _children(root):
        line = _command_line(child)
        for name, marker in COMPONENTS.items():
            if marker in line:
                components[name].append(child)
                break
    return components


@contextlib.asynccontextmanager
async def running_stack(
    state: Path, within: float = 180.0, edge_workers: int | None = None
) -> AsyncIterator[Stack]:
    """`devstack up` on free ports in `state`, ready; stopped with SIGINT (as Ctrl-C) on exit."""
    edge_port, fanout_port = free_port(), free_port()
    workers = ["--edge-workers", str(edge_workers)] if edge_workers else []
    env = {k: v for k, v in os.environ.items() if k not in ("AUCTION_JWT_SECRET", "AUCTION_SERVICE_TOKEN")}
    log = (state / "up.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack", "up", "--state-dir", str(state),
        "--edge-port", str(edge_port), "--fanout-port", str(fanout_port), *workers,
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        await _wait_ready(f"http://{HOST}:{edge_port}", state / "endpoints.json", process, within)
        secret = (state / "jwt-secret").read_text().strip()
        yield Stack(edge_port, secret, classify(process.pid))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


async def _wait_ready(url: str, endpoints: Path, process: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError("devstack up exited early; see its up.log")
            with contextlib.suppress(httpx.HTTPError):
                announced = await asyncio.to_thread(endpoints.exists)
                if announced and (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not ready within {within:.0f} s")


@dataclass
class StackFigures:
    idle_seconds: float
    # CPU used while nothing happens, as a fraction of one core, per component.
    idle_cores: dict[str, float]
    runs: list[RunFigures]


async def bench(
    levels: list[int],
    duration: float,
    warmup: float,
    idle_seconds: float = 5.0,
    on_run: Callable[[RunFigures], None] | None = None,
    edge_workers: int | None = None,
) -> StackFigures:
    """Idle cost first (after the stack settles), then the war at each level on a fresh item.
    `edge_workers`: None for `make up`'s default."""
    with tempfile.TemporaryDirectory(prefix="auction-stack-") as tmp:
        async with running_stack(Path(tmp), edge_workers=edge_workers) as stack:
            meter = CpuMeter(stack.components)
            await asyncio.sleep(2.0)  # let start-up work (migrations, first polls) finish
            meter.start()
            await asyncio.sleep(idle_seconds)
            idle = {
                name: round(spent / idle_seconds, 4)
                for name, spent in meter.seconds().items()
                if name != "load"
            }
            base_url = f"http://{HOST}:{stack.edge_port}"
            tokens = [
                mint_token(stack.secret, f"bidder{i}", "bidder", ttl_seconds=7200) for i in range(max(levels))
            ]
            runs = []
            for level in levels:
                item_id = await create_item(base_url, stack.secret)
                path = f"/items/{item_id}/bid"
                driving = asyncio.create_task(
                    asyncio.to_thread(drive, stack.edge_port, path, tokens[:level], duration, warmup, 1)
                )
                await asyncio.sleep(warmup)
                meter.start()
                await asyncio.sleep(duration)
                spent = meter.seconds()
                results = await driving
                run = summarize("make up", level, duration, results)
                run.cpu_us_per_bid = per_unit(spent, run.requests)
                accepted = [a for r in results for a in r.accepted]
                run.verdict = str(war_verdict(accepted, await get_item(base_url, item_id), 10))
                runs.append(run)
                if on_run is not None:
                    on_run(run)
    return StackFigures(idle_seconds, idle, runs)


def _print_run(run: RunFigures) -> None:
    cpu = " ".join(f"{name}={us:.0f}" for name, us in (run.cpu_us_per_bid or {}).items())
    print(
        f"make up x{run.concurrency}: {run.rps:,.0f} bids/s, p50 {run.p50_ms:.1f} ms, "
        f"p99 {run.p99_ms:.1f} ms, errors {run.error_rate * 100:.2f}%, {run.verdict}; cpu us/bid: {cpu}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", default="10,64,200", help="comma list of concurrent bidders")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="seconds of the idle measurement")
    parser.add_argument("--edge-workers", type=int, default=None, help="default: make up's (one per core)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    levels = [int(x) for x in ns.concurrency.split(",")]
    figures = asyncio.run(
        bench(levels, ns.duration, ns.warmup, ns.idle_seconds, _print_run, edge_workers=ns.edge_workers)
    )
    idle = ", ".join(f"{name} {cores:.3f}" for name, cores in figures.idle_cores.items())
    print(f"idle, cores used over {figures.idle_seconds:g} s: {idle}")
    if ns.json:
        ns.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
