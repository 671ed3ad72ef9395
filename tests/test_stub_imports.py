"""The servers import the generated stubs without the SDK's client dependencies (a fresh interpreter each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SDK_ONLY = ("httpx", "jwt", "websockets.asyncio.client")
_CHECK = """
import importlib, sys
importlib.import_module({module!r})
leaked = sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in {forbidden!r}))
print(",".join(leaked))
"""


def _leaked(module: str, forbidden: tuple[str, ...]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in (".", "clients", "deploy"))}
    result = subprocess.run(
        [sys.executable, "-c", _CHECK.format(module=module, forbidden=forbidden)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("core_bidder.main", ("httpx", "jwt", "websockets")),
        ("relay.main", ("httpx", "jwt", "websockets")),
        ("archiver.main", ("httpx", "jwt", "websockets")),
        ("fanout.main", SDK_ONLY),  # the fan-out is a websockets server, never its client
        ("auction.v1.bidder_pb2_grpc", ("httpx", "jwt", "websockets")),
    ],
)
def test_a_server_loads_no_sdk_client_dependency(module: str, forbidden: tuple[str, ...]) -> None:
    """Importing a server's main module (or the stubs alone) leaves httpx, jwt and the WS client unloaded."""
    assert _leaked(module, forbidden) == []


def test_the_sdk_names_still_import_from_the_package() -> None:
    """`from auction import ...` works for every public name, loaded on first use."""
    import auction

    for name in auction.__all__:
        assert getattr(auction, name) is not None, name
    with pytest.raises(AttributeError):
        _ = auction.no_such_name
