"""Mint HS256 tokens for the local stack (claims `sub`, `role`, `exp`, `iat`; see the README's start).

    .venv/bin/python -m devstack.tokens --sub alice --role bidder [--ttl 3600] [--secret ...]

The secret is, in order: `--secret`, the `AUCTION_JWT_SECRET` environment variable, or the local stack's
`<state dir>/jwt-secret`, which `python -m devstack up` creates when the environment does not set one. That
way a token minted in any terminal is accepted by the stack without copying secrets around.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from auction.tokens import ROLES, mint_dev_token

if TYPE_CHECKING:
    from collections.abc import Sequence

SECRET_ENV = "AUCTION_JWT_SECRET"
SERVICE_TOKEN_ENV = "AUCTION_SERVICE_TOKEN"
SECRET_FILE = "jwt-secret"
DEFAULT_STATE_DIR = Path(".state")
_DESCRIPTION = "Mint an HS256 token (sub, role, iat, exp) that the local stack accepts."


def mint_token(secret: str, sub: str, role: str, ttl_seconds: int = 3600) -> str:
    """An HS256 JWT with `sub`, `role`, `iat` and `exp` (= now + `ttl_seconds`): the SDK's dev token."""
    return mint_dev_token(secret, sub, role, ttl_seconds)


def secret_file(state_dir: Path) -> Path:
    """Where the local stack keeps its generated secret."""
    return state_dir / SECRET_FILE


def ensure_local_secret(state_dir: Path) -> str:
    """The stack's secret: `AUCTION_JWT_SECRET` when set, else the state dir's file, created on first use."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    path = secret_file(state_dir)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


def local_admin_token(secret: str) -> str:
    """The local stack's bidder admin token, derived from its JWT secret so it needs no file of its own."""
    return hmac.new(secret.encode(), b"bidder-admin-token", hashlib.sha256).hexdigest()


def local_service_token(secret: str) -> str:
    """The local stack's service token (`AUCTION_SERVICE_TOKEN`), derived from its JWT secret likewise."""
    return hmac.new(secret.encode(), b"service-token", hashlib.sha256).hexdigest()


def resolve_secret(explicit: str | None, state_dir: Path) -> str | None:
    """`--secret`, else the environment, else the state dir's file; None if there is none (never creates)."""
    if explicit:
        return explicit
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    path = secret_file(state_dir)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Print one token to stdout."""
    parser = argparse.ArgumentParser(prog="python -m devstack.tokens", description=_DESCRIPTION)
    parser.add_argument("--sub", default="alice", help="the caller's id (default: alice)")
    parser.add_argument("--role", choices=ROLES, default="bidder", help="bidder or admin (default: bidder)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default: 3600)")
    parser.add_argument(
        "--secret", help=f"HS256 secret (default: ${SECRET_ENV}, else <state-dir>/{SECRET_FILE})"
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: .state")
    args = parser.parse_args(argv)
    secret = resolve_secret(args.secret, args.state_dir)
    if secret is None:
        parser.error(
            f"no secret: pass --secret, set {SECRET_ENV}, or start the stack once "
            f"(`make up` creates {secret_file(args.state_dir)})"
        )
    try:
        token = mint_token(secret, args.sub, args.role, args.ttl)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
