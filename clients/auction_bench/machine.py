"""What a report was measured on: the numbers only mean something next to this."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def _version(*command: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"


def machine_info() -> dict[str, str]:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory = meminfo.read_text().splitlines()[0].split(":", 1)[1].strip()
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), "")  # fmt: skip
    repo = Path(__file__).resolve().parents[2]
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "python": sys.version.split()[0],
        "redis": _version("redis-server", "--version"),
        "nats": _version(str(Path(sys.executable).parent / "nats-server"), "--version"),
        "commit": _version("git", "-C", str(repo), "rev-parse", "--short", "HEAD"),
    }
