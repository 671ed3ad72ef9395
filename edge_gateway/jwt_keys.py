"""Where token verification keys come from: one static key (the HS256 secret, an RS256 PEM) or a JWKS URL.

A JWKS (RFC 7517) is fetched off the request path: by a background refresh every
`EDGE_JWT_JWKS_REFRESH_SECONDS`, and early when a token names a key id that is not loaded (a rotation),
but at most once per `min_refresh_seconds` however many such tokens arrive, so a flood of made-up `kid`s
cannot turn into a flood of fetches. A failed fetch keeps the keys already loaded. The document is
read up to `MAX_JWKS_BYTES`, keys for another algorithm or use, or carrying private material, are
skipped, and each key is bound to the configured algorithm (pyjwt's `PyJWK`), so a token cannot pick
another one.

    KeyUnavailable     the token's `kid` is not loaded; `loaded` says whether a fetch ever succeeded
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
import orjson
import structlog
from jwt.algorithms import has_crypto

HAS_CRYPTO: bool = has_crypto
MAX_JWKS_BYTES = 65_536
MAX_JWKS_KEYS = 32
_log = structlog.get_logger(__name__)


class KeyUnavailable(Exception):
    """The token names a key this gateway does not hold (yet)."""

    def __init__(self, *, loaded: bool, retry_after: int = 1) -> None:
        super().__init__("signing key not loaded")
        self.loaded = loaded
        self.retry_after = retry_after


class VerificationKeys(Protocol):
    """What `TokenVerifier` needs from a key source."""

    def key_for(self, token: str) -> Any:
        """The key to verify `token` with; `KeyUnavailable` or a pyjwt `InvalidTokenError` if none."""
        ...

    async def refresh(self) -> bool:
        """Reload the keys if the source can; True when the set changed."""
        ...


class StaticKey:
    """One key for every token: the HS256 secret or a loaded RS256 public key."""

    def __init__(self, key: Any) -> None:
        self._key = key

    def key_for(self, token: str) -> Any:
        return self._key

    async def refresh(self) -> bool:
        return False


def load_public_key(path: Path, algorithm: str) -> Any:
    """The public key in the PEM file at `path`, prepared for `algorithm` (ValueError if unusable)."""
    pem = path.read_text()
    if "PRIVATE KEY" in pem:
        raise ValueError("it holds a private key; give the gateway the public key only")
    try:
        return jwt.get_algorithm_by_name(algorithm).prepare_key(pem)
    except (jwt.InvalidKeyError, NotImplementedError, TypeError, ValueError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


class JwksKeys:
    """The signing keys of a JWKS URL, by `kid`; see the module docstring."""

    def __init__(
        self,
        url: str,
        algorithm: str,
        *,
        timeout: float = 5.0,
        min_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._algorithm = algorithm
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._documents: dict[str | None, dict[str, Any]] = {}
        self._loaded = False
        self._last_attempt = -math.inf
        self._lock = asyncio.Lock()

    def key_for(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid is not None and not isinstance(kid, str):
            raise jwt.InvalidTokenError("kid must be a string")
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            wait = self._min_refresh - (self._clock() - self._last_attempt)
            raise KeyUnavailable(loaded=self._loaded, retry_after=math.ceil(max(1.0, wait)))
        return key

    async def refresh(self) -> bool:
        """Fetch the document unless the last attempt is too recent; True when the keys changed."""
        async with self._lock:
            now = self._clock()
            if now - self._last_attempt < self._min_refresh:
                return False
            self._last_attempt = now
            try:
                documents = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                _log.warning("jwks fetch failed; keeping the loaded keys", url=self._url, error=str(exc))
                return False
            changed = documents != self._documents
            self._keys = {kid: jwt.PyJWK(doc, algorithm=self._algorithm) for kid, doc in documents.items()}
            self._documents = documents
            self._loaded = True
            return changed

    async def _fetch(self) -> dict[str | None, dict[str, Any]]:
        body = bytearray()
        async with (
            httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client,
            client.stream("GET", self._url, headers={"Accept": "application/json"}) as response,
        ):
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"the JWKS document exceeds {MAX_JWKS_BYTES} bytes")
        document = orjson.loads(body)
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise ValueError("the JWKS document has no `keys` list")
        usable = {}
        for jwk in listed[:MAX_JWKS_KEYS]:
            if self._usable(jwk):
                usable[jwk.get("kid")] = jwk
        if not usable:
            raise ValueError(f"the JWKS document has no usable {self._algorithm} signing key")
        return usable

    def _usable(self, jwk: object) -> bool:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
            return False
        if jwk.get("alg", self._algorithm) != self._algorithm:
            return False
        if not isinstance(jwk.get("kid"), str | None):
            return False
        try:
            jwt.PyJWK(jwk, algorithm=self._algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, TypeError, ValueError):
            return False
        return True
