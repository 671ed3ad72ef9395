"""Checking a bidder's HS256 bearer token outside the edge (the fan-out's `/ws/me`), with the edge's rules.

The rules are those of `edge_gateway/auth.py`, written again here so that any service can use them
without importing the edge: the algorithm is fixed (never taken from the token), `exp`, `sub` and
`role` are required, `sub` must be a valid bidder id, `role` `bidder` or `admin`, a token naming an
audience is refused (none is configured), and a token may not live longer than `max_lifetime_seconds`
(`exp - iat`, or `exp - now` without `iat`), so a leaked long-lived token is worthless.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jwt

# The contract's bidder id (`auction_contract.rules.BIDDER_PATTERN`; auction_common may not import the
# contract, a test holds the two equal).
SUB_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Far above any token we mint; bounds the work a hostile client can cause.
MAX_TOKEN_CHARS = 4096
DEFAULT_MAX_LIFETIME_SECONDS = 14_400


class TokenRejected(ValueError):
    """The token is missing, malformed, badly signed, expired or breaks a rule; `str()` says which."""


@dataclass(frozen=True, slots=True)
class Bearer:
    """Who the token names: `sub` is the bidder id; `exp` the Unix time it stops being valid."""

    sub: str
    role: Literal["bidder", "admin"]
    exp: float


class HS256Verifier:
    """Verifies tokens signed with one shared secret; `clock` is injectable for tests."""

    def __init__(
        self,
        secret: str,
        *,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("an HS256 secret is required")
        self._secret = secret
        self._max_lifetime = max_lifetime_seconds
        self._clock = clock

    def verify(self, token: str) -> Bearer:
        """The bearer of a raw token (no `Bearer ` prefix), or `TokenRejected`."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("the bearer token is malformed")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "role"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token is not meant for this service") from None
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is not valid") from None
        sub, role, exp = claims["sub"], claims["role"], float(claims["exp"])
        issued = claims.get("iat")
        start = float(issued) if isinstance(issued, int | float) else self._clock()
        if exp - start > self._max_lifetime:
            raise TokenRejected(f"the token lives longer than {self._max_lifetime:g} s")
        if not isinstance(sub, str) or SUB_PATTERN.fullmatch(sub) is None:
            raise TokenRejected("the token's subject is not a valid bidder id")
        if role == "bidder" or role == "admin":
            return Bearer(sub=sub, role=role, exp=exp)
        raise TokenRejected("the token's role is not known")
