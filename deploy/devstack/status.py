"""`python -m devstack status`: the supervisor's `status.json` as a table, and an exit code for scripts.

Exit 0 when every process runs and none is in a crash loop, 1 otherwise, 2 when no stack is up in that
state directory (no `status.json`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

STATUS_FILE = "status.json"


def render(processes: Mapping[str, Mapping[str, Any]]) -> tuple[str, bool]:
    """The table (ending with a newline) and whether everything is healthy."""
    rows = [("process", "state", "pid", "restarts", "last exit")]
    healthy = True
    for name, entry in processes.items():
        state = str(entry["state"]) + (" CRASH LOOP" if entry.get("crash_loop") else "")
        healthy = healthy and entry["state"] == "running" and not entry.get("crash_loop")
        last = f"{entry['last_exit']} at {entry['last_exit_at']}" if entry.get("last_exit") else ""
        rows.append((name, state, str(entry.get("pid") or "-"), str(entry.get("restarts", 0)), last))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*padded, row[4]]).rstrip())
    return "\n".join(lines) + "\n", healthy


def show(state_dir: Path) -> tuple[str, int]:
    """What `status` prints for `state_dir`, and its exit code."""
    try:
        document = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no stack is up in {state_dir} (no {STATUS_FILE})\n", 2
    table, healthy = render(document["processes"])
    return table, 0 if healthy else 1
