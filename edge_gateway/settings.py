"""The edge gateway's one settings object (prefix `EDGE_`), built in `main()` and passed down.

The JWT secret is the exception to the prefix: the platform names it `AUCTION_JWT_SECRET`, shared by
every service that mints or checks tokens. A gateway that starts with a guessable secret accepts forged
bids, so in production a missing, short or placeholder secret refuses to start instead of running
insecurely; locally only a missing one does (the local stack always generates one).

With `EDGE_JWT_ALGORITHM=RS256` tokens are verified with a public key instead (a PEM file, or the keys
of a JWKS URL, https in production), and no secret is needed. RS256 needs the `cryptography` package
(`pyjwt[crypto]`); without it the gateway refuses to start rather than refuse every token.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from auction_common.service_auth import ServiceAuth
from edge_gateway import jwt_keys

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (32 bytes);
# pyjwt also warns below this length.
MIN_SECRET_BYTES = 32
_PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "placeholder",
    "example",
    "your-secret",
    "insecure",
)


class SecretError(ValueError):
    """The JWT secret is unusable; the gateway must not start with it."""


class KeyConfigError(ValueError):
    """The token verification keys are misconfigured; the gateway must not start with them."""


class EdgeSettings(BaseSettings, ServiceAuth):
    """Every knob of the gateway; see the module docstring for the secret's rules. How it calls the
    bidder and the archiver (service token, TLS) is `ServiceAuth`."""

    model_config = SettingsConfigDict(env_prefix="EDGE_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bidder_target: str = "127.0.0.1:50051"
    # Empty: bid history is not configured and GET /items/{id}/bids answers 503.
    history_target: str = ""
    grpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # Bids answered by the raw ASGI route before FastAPI (`bid_route`); false: through FastAPI's router,
    # the slower reference implementation (for comparison only; both answer the same).
    raw_bid_route: bool = True
    # Group commit: concurrent bids share one PlaceBids call of at most this many bids, with at
    # most `bid_batch_in_flight` calls outstanding (see `bid_batcher`). Measured on one hot item (seven
    # interleaved pairs): 2 gave 35% more bids/s than 1 at 10 bidders, 18% more at 64, the same at 200;
    # 4 or more gave less (smaller batches cost the edge and the bidder more per bid).
    bid_batch_max: int = Field(default=256, ge=1, le=4096)
    bid_batch_in_flight: int = Field(default=2, ge=1, le=64)
    # Per bidder (`sub`), per gateway process: a safety valve against one runaway client,
    # not a fairness mechanism, so the defaults are far above what a human can click.
    rate_limit_per_second: float = Field(default=1000.0, gt=0)
    rate_limit_burst: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=16_384, ge=64)
    # The request head (target and header fields): larger is 431; not complete in time is 408 and closed.
    max_header_bytes: int = Field(default=16_384, ge=1024, le=1 << 20)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Per client address (IPv6: per /64), per process: reads (no token needed) and failed
    # authentications; 0 switches a limit off. Behind a proxy, name it in `forwarded_allow_ips`, or
    # every client has the proxy's address.
    read_rate_limit_per_second: float = Field(default=200.0, ge=0)
    read_rate_limit_burst: int = Field(default=400, ge=1)
    auth_failure_rate_limit_per_second: float = Field(default=10.0, ge=0)
    auth_failure_rate_limit_burst: int = Field(default=20, ge=1)
    # Client addresses each of those limiters tracks at most (bounds their memory).
    rate_limit_max_clients: int = Field(default=100_000, ge=100)
    # Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client; empty: none is
    # trusted, and the client is the connection's peer.
    forwarded_allow_ips: str = ""
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_public_key_file: FilePath | None = None
    jwt_jwks_url: str | None = Field(default=None, pattern=r"^https?://")
    jwt_jwks_refresh_seconds: float = Field(default=300.0, ge=10)
    # When set, tokens must carry exactly this `iss` / an `aud` naming this audience.
    jwt_issuer: str | None = Field(default=None, min_length=1)
    jwt_audience: str | None = Field(default=None, min_length=1)
    # Tokens living longer (exp - iat; without iat: exp - now) are refused: a leaked one expires soon.
    max_token_lifetime_seconds: int = Field(default=14_400, ge=60)
    environment: Literal["local", "production"] = "local"
    # The fan-out as browsers reach it (scheme, host, port; no path): the web page under `/app/` opens its
    # WebSockets there, and the page's Content-Security-Policy allows no other origin. The characters a
    # policy uses as separators (`;`, `,`, quotes, spaces) cannot appear, so the value cannot widen it.
    fanout_public_url: str = Field(default="ws://127.0.0.1:8081", pattern=r"^wss?://[A-Za-z0-9.:\[\]-]+$")
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Uvicorn worker processes; each has its own rate limiter, token cache and metrics.
    workers: int = Field(default=1, ge=1, le=64)
    shutdown_grace_seconds: int = Field(default=10, ge=0)
    jwt_secret: SecretStr | None = Field(default=None, validation_alias="AUCTION_JWT_SECRET")

    @model_validator(mode="after")
    def _check_secret(self) -> Self:
        """Refuse settings the gateway could not run safely with (`key_problems`, `secret_problems`)."""
        problems = key_problems(self)
        if problems:
            raise KeyConfigError("; ".join(problems))
        if self.jwt_algorithm != "HS256":
            return self
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            # Locally too: the local stack always generates one, so missing means misconfigured.
            raise SecretError("AUCTION_JWT_SECRET is not set")
        problems = secret_problems(self.jwt_secret.get_secret_value())
        if problems and self.environment == "production":
            raise SecretError("; ".join(problems))
        return self

    @property
    def secret(self) -> str:
        """The JWT secret (present by construction with HS256, the default)."""
        assert self.jwt_secret is not None
        return self.jwt_secret.get_secret_value()


def secret_problems(secret: str) -> list[str]:
    """Why `secret` is unfit for production (empty when it is fine).

    Locally these are only logged as warnings by `main()`; in production they stop the start.
    """
    problems: list[str] = []
    if len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(f"AUCTION_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    lowered = secret.lower()
    if any(word in lowered for word in _PLACEHOLDERS) or len(set(secret)) < 8:
        problems.append("AUCTION_JWT_SECRET looks like a placeholder; generate a random one")
    return problems


def key_problems(settings: EdgeSettings) -> list[str]:
    """Why the RS256 key settings are unusable (empty when they are fine, or unused with HS256)."""
    has_file, has_jwks = settings.jwt_public_key_file is not None, settings.jwt_jwks_url is not None
    if settings.jwt_algorithm == "HS256":
        if has_file or has_jwks:
            return ["EDGE_JWT_PUBLIC_KEY_FILE and EDGE_JWT_JWKS_URL need EDGE_JWT_ALGORITHM=RS256"]
        return []
    if has_file == has_jwks:
        return ["EDGE_JWT_ALGORITHM=RS256 needs exactly one of EDGE_JWT_PUBLIC_KEY_FILE, EDGE_JWT_JWKS_URL"]
    if not jwt_keys.HAS_CRYPTO:
        return ["EDGE_JWT_ALGORITHM=RS256 needs the cryptography package (pip install 'pyjwt[crypto]')"]
    url = settings.jwt_jwks_url
    if url is not None and settings.environment == "production" and not url.startswith("https://"):
        return ["EDGE_JWT_JWKS_URL must be https in production"]
    if settings.jwt_public_key_file is not None:
        try:
            jwt_keys.load_public_key(settings.jwt_public_key_file, settings.jwt_algorithm)
        except (OSError, ValueError) as exc:
            return [f"EDGE_JWT_PUBLIC_KEY_FILE is not a usable public key: {exc}"]
    return []
