"""The servers import the generated `auction.v1` stubs without the SDK's client libraries.

`auction.v1` lives inside the SDK package, so importing it runs `auction/__init__.py`; that init loads its
public names lazily, so a server pulls in no httpx, jwt or websockets client by using the stubs. Each
check runs in a fresh interpreter (this one has long since imported all of them), with the same import
roots as pytest's `pythonpath`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import auction
from tests.conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
IMPORT_ROOTS = [".", "clients", "deploy"]  # as `[tool.pytest.ini_options] pythonpath`

# Module names that must not be loaded; each also covers its submodules.
CLIENT_LIBRARIES = ("httpx", "jwt", "websockets")
# fanout serves WebSockets (the `websockets` server modules) and verifies `/ws/me` tokens with pyjwt itself
# (`auction_common.jwt_verify`), but needs no client.
FANOUT_FORBIDDEN = ("httpx", "websockets.asyncio.client")

_REPORT = """
import json, sys
forbidden = {forbidden!r}
print(json.dumps(sorted(
    name for name in sys.modules
    if any(name == f or name.startswith(f + ".") for f in forbidden)
)))
"""


def loaded_after(code: str, forbidden: tuple[str, ...]) -> list[str]:
    """Run `code` in a fresh interpreter and return which `forbidden` modules (or submodules) it loaded."""
    env = dict(os.environ)
    roots = [str(ROOT / root) for root in IMPORT_ROOTS]
    if env.get("PYTHONPATH"):
        roots.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(roots)
    result = subprocess.run(
        [sys.executable, "-c", code + _REPORT.format(forbidden=forbidden)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("core_bidder.main", CLIENT_LIBRARIES),
        ("relay.main", CLIENT_LIBRARIES),
        ("archiver.main", CLIENT_LIBRARIES),
        ("fanout.main", FANOUT_FORBIDDEN),
    ],
)
def test_server_imports_no_client_libraries(module: str, forbidden: tuple[str, ...]) -> None:
    """Importing a server's entry point loads no httpx, jwt or WebSocket client (except fanout, which
    serves WebSockets and checks tokens: no client of either)."""
    assert loaded_after(f"import {module}", forbidden) == []


def test_stubs_alone_import_no_client_libraries() -> None:
    """`import auction.v1` runs the SDK's init but loads none of httpx, jwt, websockets."""
    assert loaded_after("import auction.v1", CLIENT_LIBRARIES) == []


def test_sdk_names_import_from_the_package() -> None:
    """`from auction import ...` still gives the SDK's classes and functions, from their submodules."""
    code = (
        "from auction import AuctionClient, BidTooLow, watch_item\n"
        "assert AuctionClient.__module__ == 'auction.sync', AuctionClient.__module__\n"
        "assert BidTooLow.__module__ == 'auction.errors', BidTooLow.__module__\n"
        "assert watch_item.__module__ == 'auction.live', watch_item.__module__\n"
    )
    # The REST client needs httpx, so asking for its name loads it.
    assert "httpx" in loaded_after(code, ("httpx",))


@pytest.mark.parametrize("name", auction.__all__)
def test_every_public_name_resolves(name: str) -> None:
    """Every name in `auction.__all__` is an attribute of the package and listed by `dir(auction)`."""
    assert getattr(auction, name) is not None
    assert name in dir(auction)


def test_unknown_name_is_an_attribute_error() -> None:
    """A name the SDK does not export raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = auction.no_such_name
