"""Bearer JWT authentication (HS256) and the typed principal dependencies of the write routes.

Verifying an HS256 token costs a base64 decode, a JSON parse and an HMAC, and a bidder in a bidding
war sends the same token thousands of times. So successful verifications are cached by the raw token
string (a different string is a different cache entry and is verified in full), with `exp` re-checked
on every hit. The cache is bounded; on overflow the oldest entry goes. Failures are never cached, so
garbage tokens cannot evict good ones faster than they would anyway.

Write routes also pass the per-bidder rate limiter here, after authentication and authorisation, so
the order of answers is 401, then 403, then 429.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from jwt.types import Options
from starlette.requests import Request

from edge_gateway.problems import forbidden, unauthorized
from edge_gateway.state import edge_state

ALGORITHMS = ["HS256"]
SUB_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Far above any token we mint; bounds the work and the cache memory a hostile header can cause.
MAX_TOKEN_CHARS = 4096
_DECODE_OPTIONS: Options = {"require": ["exp", "sub", "role"]}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `sub` is the bidder id everywhere downstream."""

    sub: str
    role: Literal["bidder", "admin"]
    exp: float


class TokenVerifier:
    """Verifies bearer tokens with one HS256 secret and remembers the good ones until they expire."""

    def __init__(
        self, secret: str, *, cache_size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, Principal] = {}

    def verify_header(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer <jwt>` header value, or a 401 problem."""
        if not authorization:
            raise unauthorized("a bearer token is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise unauthorized("use the Bearer authorization scheme")
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        """The principal of a raw token, or a 401 problem."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.exp > self._clock():
                return cached
            del self._cache[token]
            raise unauthorized("the token has expired")
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("the bearer token is malformed")
        principal = self._decode(token)
        if len(self._cache) >= self._cache_size:
            del self._cache[next(iter(self._cache))]
        self._cache[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=ALGORITHMS, options=_DECODE_OPTIONS)
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not valid") from None
        sub, role, exp = claims["sub"], claims["role"], claims["exp"]
        if not isinstance(sub, str) or SUB_PATTERN.fullmatch(sub) is None:
            raise unauthorized("the token's subject is not a valid bidder id")
        if role == "bidder" or role == "admin":
            return Principal(sub=sub, role=role, exp=float(exp))
        raise unauthorized("the token's role is not known")


class BearerAuth(SecurityBase):
    """FastAPI security dependency: authenticate, authorise by role, then rate-limit by `sub`.

    Subclassing `SecurityBase` makes FastAPI list the bearer scheme in OpenAPI (the lock in /docs);
    the verifier and limiter come from the app state, so one instance serves every app.
    """

    def __init__(self, *, admin_only: bool) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description="HS256 JWT with sub, role and exp")
        self.scheme_name = "bearerAuth"
        self._admin_only = admin_only

    async def __call__(self, request: Request) -> Principal:
        state = edge_state(request)
        principal = state.verifier.verify_header(request.headers.get("authorization"))
        if self._admin_only and principal.role != "admin":
            raise forbidden("creating items needs an admin token")
        state.limiter.check(principal.sub)
        return principal


BidderPrincipal = Annotated[Principal, Depends(BearerAuth(admin_only=False))]
"""A caller allowed to bid (`bidder` or `admin`), within its rate limit."""

AdminPrincipal = Annotated[Principal, Depends(BearerAuth(admin_only=True))]
"""A caller allowed to create items (`admin`), within its rate limit."""

__all__ = [
    "AdminPrincipal",
    "BearerAuth",
    "BidderPrincipal",
    "Principal",
    "TokenVerifier",
]
