"""The box `up` prints once everything is ready: where things listen and how to try them.

Only rules above and below, no side borders, so every command line can be copied from the terminal as is.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import TYPE_CHECKING

from devstack.tokens import SECRET_ENV, secret_file

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devstack.stack import UpOptions

READY_MARKER = "the local auction stack is up"
"""Printed in the box's title line; tests and scripts wait for it."""


def _display_path(path: str) -> str:
    """A path as short as it can be while still working from the current directory."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def render(options: UpOptions, endpoints: Mapping[str, str], *, secret_from_env: bool) -> str:
    """The summary text, ending with a newline."""
    python = _display_path(sys.executable)
    state_arg = "" if os.path.normpath(options.state_dir) == ".state" else f" --state-dir {options.state_dir}"
    lines = [f"{READY_MARKER} (Ctrl-C stops everything)", ""]
    rows = [
        ("edge (REST)", endpoints.get("edge", ""), "docs: /docs"),
        ("web page", endpoints.get("web", ""), "open it in a browser"),
        ("fanout (WS)", endpoints.get("fanout", ""), "/ws/items/{id}, 2 processes"),
        ("bidder (gRPC)", endpoints.get("bidder", ""), "health + reflection"),
        ("archiver (gRPC)", endpoints.get("archiver", ""), "bid history; relay moves the outbox to NATS"),
        ("redis", endpoints["redis"], f"AOF appendfsync {options.redis_fsync}"),
        ("redis replica", endpoints.get("redis_replica", ""), "the bidder waits for it (WAIT 1)"),
        ("nats", endpoints["nats"], f"monitor {endpoints['nats_monitor']}"),
        ("postgres", endpoints["postgres"], ""),
    ]
    for label, where, note in rows:
        if where:
            lines.append(f"  {label:<14} {where}" + (f"   ({note})" if note else ""))
    lines.append(
        f"  {'state':<14} {_display_path(str(options.state_dir))}/ (endpoints.json, status.json, logs/)"
    )
    lines.append(
        f"  {'supervision':<14} a process that dies is restarted on its ports and data, with backoff "
        f"({python} -m devstack status{state_arg})"
    )
    lines.append("")
    tokens = f"{python} -m devstack.tokens"
    lines.append("Tokens (HS256; prints one JWT, valid for 1 h):")
    lines.append(f"  {tokens} --sub alice --role bidder{state_arg}")
    lines.append(f"  {tokens} --sub admin --role admin{state_arg}")
    if secret_from_env:
        lines.append(f"  ({SECRET_ENV} comes from your environment: set it where you mint tokens too)")
    else:
        where = _display_path(str(secret_file(options.state_dir)))
        lines.append(f"  (secret: {where}; {SECRET_ENV} overrides)")
    edge = endpoints.get("edge")
    if edge:
        ends_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        item = (
            f'{{"title": "Vintage lamp", "currency": "USD", "starting_price": 1000, '
            f'"min_increment": 100, "ends_at": "{ends_at}"}}'
        )
        lines += [
            "",
            "Try it (bash):",
            f"  ADMIN_TOKEN=$({tokens} --sub admin --role admin{state_arg})",
            f"  BIDDER_TOKEN=$({tokens} --sub alice --role bidder{state_arg})",
            f'  ITEM_ID=$(curl -sS -X POST {edge}/items -H "Authorization: Bearer $ADMIN_TOKEN" '
            f"-H 'Content-Type: application/json' -d '{item}' "
            f"| {python} -c 'import json, sys; print(json.load(sys.stdin)[\"id\"])')",
            f'  curl -sS -w "\\n" -X POST {edge}/items/$ITEM_ID/bid -H "Authorization: Bearer $BIDDER_TOKEN" '
            "-H 'Content-Type: application/json' -H 'Idempotency-Key: first-bid' -d '{\"amount\": 1000}'",
            f'  curl -sS -w "\\n" {edge}/items/$ITEM_ID',
        ]
    else:
        lines += ["", "Servers only: start our services yourself against the URLs above."]
    width = min(max(len(line) for line in lines), 110)
    rule = "=" * width
    return "\n".join(["", rule, *lines, rule, ""]) + "\n"
