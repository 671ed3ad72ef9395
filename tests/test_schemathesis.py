"""schemathesis against the whole platform as `make up` runs it: every check, with admin, bidder and no token.

The stack is `python -m devstack up` itself (`tests.platform_fixtures`), so the document is tested
against the server users start. Each run is bounded by `--max-time`; the cases run and the failures
(zero) are printed. `tests/schemathesis/schemathesis.toml` names the few answers JSON Schema cannot
predict (a time in the past, a reused idempotency key, an opaque cursor), and why.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.platform_fixtures import Platform, platform

CONFIG = Path(__file__).parent / "schemathesis" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_SECONDS_PER_RUN = 40
SUMMARY = re.compile(r"(\d+) generated, .*")
__all__ = ["platform"]


@pytest.mark.parametrize("role", ["admin", "bidder", None], ids=["admin", "bidder", "no-token"])
async def test_schemathesis_finds_nothing(
    platform: Platform, role: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    url = platform.edge_url
    headers = [] if role is None else ["-H", f"Authorization: Bearer {platform.token(f'st-{role}', role)}"]
    # Without a token every write is a failed authentication, so this address soon spends its budget
    # of them and gets the documented 429 instead of 401; whether the one "Authorization left out"
    # case of an operation falls before or after that is luck. The token runs hold that check.
    skipped = ["--exclude-checks", "missing_required_header"] if role is None else []
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
        # One worker: schemathesis's threads trip CPython 3.11's "AST constructor recursion depth
        # mismatch" (a CPython 3.11 bug with threads) in its own code now and then, read as a failure.
        "--checks", "all", "--max-time", str(MAX_SECONDS_PER_RUN), "--workers", "1",
        "--request-timeout", "10", "--no-color", *headers, *skipped,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout=MAX_SECONDS_PER_RUN + scaled(120))
    text = out.decode(errors="replace")
    summary = SUMMARY.search(text)
    with capsys.disabled():  # the figures belong in every test run's output, passing or not
        print(f"\nschemathesis ({role or 'no token'}): {summary.group(0) if summary else 'no summary'}")
    assert process.returncode == 0, text[-6000:]
    assert summary is not None, text[-2000:]
    assert int(summary.group(1)) > 100, text[-2000:]
    assert "failure" not in summary.group(0), summary.group(0)
