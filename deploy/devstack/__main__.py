"""`python -m devstack up`: run the platform locally in the foreground (see `devstack.stack`); `status`:
what its supervisor says about each process (see `devstack.status`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devstack import status
from devstack.redis_server import FSYNC_CHOICES
from devstack.stack import UpOptions, up

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="The local auction stack.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "up",
        help="run Redis, NATS, Postgres and our services in the foreground; Ctrl-C stops everything",
    )
    run.add_argument("--state-dir", type=Path, default=Path(".state"), help="data and logs (default: .state)")
    run.add_argument("--edge-port", type=int, default=8080, help="REST port of the edge (default: 8080)")
    run.add_argument(
        "--fanout-port", type=int, default=8081, help="WebSocket port of the fan-out (default: 8081)"
    )
    run.add_argument("--strategy", choices=("lua", "watch"), default="lua", help="bidder's Redis strategy")
    run.add_argument("--partitions", type=int, default=None, help="BIDDER_PARTITIONS (default: the bidder's)")
    run.add_argument("--servers-only", action="store_true", help="start only Redis, NATS and Postgres")
    run.add_argument(
        "--redis-fsync",
        choices=FSYNC_CHOICES,
        default="everysec",
        help="Redis AOF appendfsync: everysec (default; a machine crash may lose about 1 s) or always "
        "(fsync before every reply)",
    )
    run.add_argument(
        "--redis-replica",
        action="store_true",
        help="also run a Redis replica, and make the bidder wait for it after every write "
        "(BIDDER_REDIS_WAIT_REPLICAS=1)",
    )
    run.add_argument(
        "--edge-workers", type=int, default=None, help="edge processes (default: one per core, at most 4)"
    )
    state = commands.add_parser("status", help="each process's state and restarts, from a running `up`")
    state.add_argument("--state-dir", type=Path, default=Path(".state"), help="as given to `up`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run it; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "status":
        text, code = status.show(args.state_dir)
        (sys.stdout if code != 2 else sys.stderr).write(text)
        return code
    options = UpOptions(
        state_dir=args.state_dir,
        edge_port=args.edge_port,
        fanout_port=args.fanout_port,
        strategy=args.strategy,
        partitions=args.partitions,
        servers_only=args.servers_only,
        redis_fsync=args.redis_fsync,
        redis_replica=args.redis_replica,
        **({"edge_workers": args.edge_workers} if args.edge_workers else {}),
    )
    return asyncio.run(up(options))


if __name__ == "__main__":
    raise SystemExit(main())
