"""Bearer JWT authentication and the typed principal dependencies of the write routes.

Tokens are HS256 with the shared secret by default, or RS256 with a public key or a JWKS
(`jwt_keys`); the algorithm is fixed by the settings, never taken from the token. Besides `exp`,
`sub` and `role`, a token must not live longer than `max_lifetime_seconds` (`exp - iat`, or
`exp - now` without `iat`), must carry the configured `iss` and `aud` when those are set, and, as
RFC 7519 §4.1.3 asks, is refused when it names an audience while none is configured.

Verifying a token costs a base64 decode, a JSON parse and a signature check, and a bidder in a bidding
war sends the same token thousands of times. So successful verifications are cached by the raw token
string (a different string is a different cache entry and is verified in full), with `exp` re-checked
on every hit. The cache is bounded; on overflow the oldest entry goes. Failures are never cached, so
garbage tokens cannot evict good ones faster than they would anyway. The cache is emptied when a
JWKS refresh changes the keys, so a withdrawn key stops working at once.

Write routes also pass the rate limiters here: a failed authentication spends a token of the caller's
address (`auth_failures`; once spent, failures are answered 429 instead of 401, while valid tokens
still pass), and after authentication and authorisation the per-bidder limiter applies, so the order of
answers is 401, then 403, then 429.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import jwt
from fastapi import Depends
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from jwt.types import Options
from starlette.requests import Request

from edge_gateway.jwt_keys import JwksKeys, KeyUnavailable, StaticKey, VerificationKeys, load_public_key
from edge_gateway.problems import ProblemError, forbidden, unauthorized, unavailable
from edge_gateway.ratelimit import client_key
from edge_gateway.state import edge_state

if TYPE_CHECKING:
    from starlette.types import Scope

    from edge_gateway.settings import EdgeSettings
    from edge_gateway.state import EdgeState

SUB_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Far above any token we mint; bounds the work and the cache memory a hostile header can cause.
MAX_TOKEN_CHARS = 4096
DEFAULT_MAX_LIFETIME_SECONDS = 14_400


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `sub` is the bidder id everywhere downstream."""

    sub: str
    role: Literal["bidder", "admin"]
    exp: float


class TokenVerifier:
    """Verifies bearer tokens with one algorithm and its keys; remembers the good ones until they expire."""

    def __init__(
        self,
        secret: str | None = None,
        *,
        keys: VerificationKeys | None = None,
        algorithm: str = "HS256",
        issuer: str | None = None,
        audience: str | None = None,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keys is None:
            if secret is None:
                raise ValueError("a secret or keys are required")
            keys = StaticKey(secret)
        self._keys = keys
        self._algorithms = [algorithm]
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime = max_lifetime_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, Principal] = {}
        required = ["exp", "sub", "role"]
        required += ["iss"] if issuer is not None else []
        required += ["aud"] if audience is not None else []
        self._options: Options = {"require": required}

    def verify_header(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer <jwt>` header value, or a 401 problem."""
        return self.verify(_bearer_token(authorization))

    def verify(self, token: str) -> Principal:
        """The principal of a raw token, or a 401 problem (an unknown signing key included)."""
        try:
            return self._verify(token)
        except KeyUnavailable as exc:
            raise _key_problem(exc) from None

    async def authenticate(self, authorization: str | None) -> Principal:
        """`verify_header`, but a token signed by a key not loaded yet first refreshes the keys."""
        token = _bearer_token(authorization)
        try:
            return self._verify(token)
        except KeyUnavailable:
            await self.refresh_keys()
        return self.verify(token)

    async def refresh_keys(self) -> None:
        """Reload the keys (JWKS only); a changed key set empties the cache."""
        if await self._keys.refresh():
            self._cache.clear()

    async def refresh_keys_every(self, seconds: float) -> None:
        """`refresh_keys` now and then every `seconds`, forever (the lifespan's task for a JWKS)."""
        while True:
            await self.refresh_keys()
            await asyncio.sleep(seconds)

    def _verify(self, token: str) -> Principal:
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
            claims = jwt.decode(
                token,
                self._keys.key_for(token),
                algorithms=self._algorithms,
                options=self._options,
                issuer=self._issuer,
                audience=self._audience,
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise unauthorized("the token is not meant for this service") from None
        except jwt.InvalidTokenError:
            raise unauthorized("the token is not valid") from None
        sub, role, exp = claims["sub"], claims["role"], float(claims["exp"])
        issued = claims.get("iat")
        if exp - (int(issued) if issued is not None else self._clock()) > self._max_lifetime:
            raise unauthorized(f"the token lives longer than {self._max_lifetime:g} s")
        if not isinstance(sub, str) or SUB_PATTERN.fullmatch(sub) is None:
            raise unauthorized("the token's subject is not a valid bidder id")
        if role == "bidder" or role == "admin":
            return Principal(sub=sub, role=role, exp=exp)
        raise unauthorized("the token's role is not known")


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise unauthorized("a bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized("use the Bearer authorization scheme")
    return token.strip()


def _key_problem(exc: KeyUnavailable) -> ProblemError:
    """401 for a key the loaded set does not have; 503 while no key set could be fetched at all."""
    if exc.loaded:
        return unauthorized("the token's signing key is not known")
    return unavailable("the token signing keys cannot be fetched yet", retry_after=exc.retry_after)


def verifier_from_settings(settings: EdgeSettings) -> TokenVerifier:
    """The app's verifier (with a JWKS, the lifespan runs its `refresh_keys_every`)."""
    algorithm = settings.jwt_algorithm
    keys: VerificationKeys
    if settings.jwt_jwks_url is not None:
        # The fetch's deadline is the gateway's upstream deadline: the identity provider is one more.
        keys = JwksKeys(settings.jwt_jwks_url, algorithm, timeout=settings.grpc_timeout_seconds)
    elif settings.jwt_public_key_file is not None:
        keys = StaticKey(load_public_key(settings.jwt_public_key_file, algorithm))
    else:
        keys = StaticKey(settings.secret)
    return TokenVerifier(
        keys=keys,
        algorithm=algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        max_lifetime_seconds=settings.max_token_lifetime_seconds,
    )


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
        authorization = request.headers.get("authorization")
        return await authorize(edge_state(request), authorization, request.scope, admin_only=self._admin_only)


async def authorize(
    state: EdgeState, authorization: str | None, scope: Scope, *, admin_only: bool
) -> Principal:
    """The caller of a write: authenticated (401, or 429 once its address failed too often), then
    authorised by role (403 when `admin_only` and not an admin), then within its rate limit (429).
    Shared by `BearerAuth` and the raw bid route (`bid_route`), so both answer alike."""
    try:
        principal = await state.verifier.authenticate(authorization)
    except ProblemError as problem:
        failures = state.auth_failures
        if problem.status == 401 and failures is not None:
            failures.check(client_key(scope), "too many failed authentications")
        raise
    if admin_only and principal.role != "admin":
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
    "authorize",
    "verifier_from_settings",
]
