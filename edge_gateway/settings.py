"""The edge gateway's one settings object (prefix `EDGE_`), built in `main()` and passed down.

The JWT secret is the exception to the prefix: the contract names it `AUCTION_JWT_SECRET`, shared by
every service that mints or checks tokens. A gateway that starts with a guessable secret accepts forged
bids, so in production a missing, short or placeholder secret refuses to start instead of running
insecurely; locally only a missing one does (the local stack always generates one).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class EdgeSettings(BaseSettings):
    """Every knob of the gateway; see the module docstring for the secret's rules."""

    model_config = SettingsConfigDict(env_prefix="EDGE_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bidder_target: str = "127.0.0.1:50051"
    # Empty: bid history is not configured and GET /items/{id}/bids answers 503.
    history_target: str = ""
    grpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # Group commit: concurrent bids share one PlaceBids call of at most this many bids, with at
    # most `bid_batch_in_flight` calls outstanding (see `bid_batcher`).
    bid_batch_max: int = Field(default=256, ge=1, le=4096)
    bid_batch_in_flight: int = Field(default=2, ge=1, le=64)
    # Per bidder (`sub`), per gateway process: a safety valve against one runaway client,
    # not a fairness mechanism, so the defaults are far above what a human can click.
    rate_limit_per_second: float = Field(default=1000.0, gt=0)
    rate_limit_burst: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=16_384, ge=64)
    environment: Literal["local", "production"] = "local"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Uvicorn worker processes; each has its own rate limiter, token cache and metrics.
    workers: int = Field(default=1, ge=1, le=64)
    shutdown_grace_seconds: int = Field(default=10, ge=0)
    jwt_secret: SecretStr | None = Field(default=None, validation_alias="AUCTION_JWT_SECRET")

    @model_validator(mode="after")
    def _check_secret(self) -> Self:
        """Refuse settings the gateway could not run safely with (see `secret_problems`)."""
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            # Locally too: the local stack always generates one, so missing means misconfigured.
            raise SecretError("AUCTION_JWT_SECRET is not set")
        problems = secret_problems(self.jwt_secret.get_secret_value())
        if problems and self.environment == "production":
            raise SecretError("; ".join(problems))
        return self

    @property
    def secret(self) -> str:
        """The JWT secret (present by construction)."""
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
