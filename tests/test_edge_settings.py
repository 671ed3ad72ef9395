"""Settings: the `EDGE_` prefix, the contract's `AUCTION_JWT_SECRET`, and refusing unsafe secrets."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from edge_gateway.settings import EdgeSettings, secret_problems
from tests.test_edge_support import SECRET


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without the gateway's variables."""
    for name in list(os.environ):
        if name.upper().startswith("EDGE_") or name.upper() == "AUCTION_JWT_SECRET":
            monkeypatch.delenv(name)


def test_defaults_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUCTION_JWT_SECRET", SECRET)
    settings = EdgeSettings()
    assert (settings.host, settings.port, settings.bidder_target) == ("127.0.0.1", 8080, "127.0.0.1:50051")
    assert settings.history_target == ""
    assert settings.grpc_timeout_seconds == 5
    assert settings.max_body_bytes == 16_384
    assert settings.environment == "local"
    assert settings.workers == 1
    assert settings.secret == SECRET
    assert SECRET not in repr(settings)


def test_edge_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUCTION_JWT_SECRET", SECRET)
    monkeypatch.setenv("EDGE_PORT", "9090")
    monkeypatch.setenv("EDGE_BIDDER_TARGET", "bidder:50051")
    monkeypatch.setenv("EDGE_HISTORY_TARGET", "archiver:50052")
    monkeypatch.setenv("EDGE_RATE_LIMIT_PER_SECOND", "5.5")
    settings = EdgeSettings()
    assert (settings.port, settings.bidder_target, settings.history_target) == (
        9090,
        "bidder:50051",
        "archiver:50052",
    )
    assert settings.rate_limit_per_second == 5.5


@pytest.mark.parametrize("environment", ["local", "production"])
def test_missing_secret_refuses_to_start(environment: str) -> None:
    """The local stack always sets a secret, so missing is an error everywhere."""
    with pytest.raises(ValidationError, match="AUCTION_JWT_SECRET is not set"):
        EdgeSettings.model_validate({"environment": environment})
    with pytest.raises(ValidationError, match="not set"):
        EdgeSettings.model_validate({"environment": environment, "AUCTION_JWT_SECRET": ""})


@pytest.mark.parametrize(
    "secret",
    [
        "short-but-random-Q7x",
        "changeme-changeme-changeme-changeme",
        "a" * 64,
        "your-secret-key-goes-here-please-123",
    ],
)
def test_production_refuses_weak_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="AUCTION_JWT_SECRET"):
        EdgeSettings.model_validate({"environment": "production", "AUCTION_JWT_SECRET": secret})


def test_local_accepts_weak_secret_but_reports_it() -> None:
    """Locally a weak secret only produces warnings (logged by main)."""
    settings = EdgeSettings.model_validate({"AUCTION_JWT_SECRET": "dev-secret"})
    assert secret_problems(settings.secret)


def test_production_accepts_a_strong_secret() -> None:
    settings = EdgeSettings.model_validate({"environment": "production", "AUCTION_JWT_SECRET": SECRET})
    assert secret_problems(settings.secret) == []


def test_settings_are_immutable() -> None:
    settings = EdgeSettings.model_validate({"AUCTION_JWT_SECRET": SECRET})
    with pytest.raises(ValidationError):
        settings.port = 1
