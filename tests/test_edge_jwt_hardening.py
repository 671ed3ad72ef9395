"""JWT hardening: a cap on token lifetime, optional `iss`/`aud` checks, and keys from a JWKS URL
(fetched from a real HTTP server, rotated, never fetched in a flood) or an RS256 PEM file.

RS256 needs the `cryptography` package; without it the gateway refuses the RS256 settings at start
(tested here), and the RS256 end-to-end tests are skipped. The JWKS machinery is the same for every
algorithm, so it is exercised with HS256 `oct` keys, which pyjwt handles without `cryptography`.
"""

from __future__ import annotations

import asyncio
import base64
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import orjson
import pytest
import uvicorn
from pydantic import ValidationError

from auction.tokens import mint_dev_token
from edge_gateway.auth import TokenVerifier
from edge_gateway.jwt_keys import HAS_CRYPTO, JwksKeys
from edge_gateway.problems import ProblemError
from edge_gateway.settings import EdgeSettings
from tests.conftest import scaled
from tests.test_edge_support import SECRET, bearer, free_port, make_settings, make_token, running_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Receive, Scope, Send

HOURS = 3600
KEY_1 = "jwks-key-one-0123456789-abcdefghijkl"
KEY_2 = "jwks-key-two-9876543210-zyxwvutsrqpo"


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "role": "bidder", "exp": int(time.time()) + 300, **extra}


def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(ProblemError) as raised:
        verifier.verify(token)
    assert raised.value.status == 401
    return raised.value.detail


# Lifetime cap


def test_token_living_longer_than_the_cap_is_401() -> None:
    """exp - iat above the cap (default 4 h) is refused, however far from expiry it still is."""
    verifier = TokenVerifier(SECRET)
    now = int(time.time())
    too_long = jwt.encode(claims(iat=now, exp=now + 4 * HOURS + 1), SECRET)
    assert "longer than 14400 s" in rejected(verifier, too_long)
    verifier.verify(jwt.encode(claims(iat=now, exp=now + 4 * HOURS), SECRET))


def test_token_without_iat_is_capped_from_now() -> None:
    """Without `iat` the remaining lifetime counts: exp 5 h away is refused, 3 h away accepted."""
    verifier = TokenVerifier(SECRET)
    now = int(time.time())
    assert "longer than" in rejected(verifier, jwt.encode(claims(exp=now + 5 * HOURS), SECRET))
    verifier.verify(jwt.encode(claims(exp=now + 3 * HOURS), SECRET))


def test_a_backdated_iat_does_not_escape_the_cap() -> None:
    """An `iat` far in the past with a near `exp` still measures exp - iat."""
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 10 * HOURS, exp=now + 60), SECRET)
    assert "longer than" in rejected(TokenVerifier(SECRET), token)


@pytest.mark.parametrize("ttl", [3600, 7200])
def test_dev_and_bench_tokens_fit_the_default_cap(ttl: int) -> None:
    """`auction token` / `devstack.tokens` mint 1 h by default, the benchmarks 2 h: both stay valid."""
    principal = TokenVerifier(SECRET).verify(mint_dev_token(SECRET, "alice", "bidder", ttl))
    assert principal.sub == "alice"


async def test_lifetime_cap_comes_from_the_settings() -> None:
    """The gateway applies its configured cap (401 over it; 503 = past authentication, no bidder)."""
    async with running_app(make_settings(max_token_lifetime_seconds=600)) as (_, client):
        body = {"amount": 100}
        long_lived = bearer(make_token(expires_in=900))
        assert (await client.post("/items/lot-1/bid", json=body, headers=long_lived)).status_code == 401
        short_lived = bearer(make_token(expires_in=500))
        assert (await client.post("/items/lot-1/bid", json=body, headers=short_lived)).status_code == 503


def test_new_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AUCTION_JWT_SECRET": SECRET,
        "EDGE_MAX_TOKEN_LIFETIME_SECONDS": "600",
        "EDGE_JWT_ISSUER": "https://idp.example",
        "EDGE_JWT_AUDIENCE": "auction-edge",
    }.items():
        monkeypatch.setenv(name, value)
    settings = EdgeSettings()
    assert settings.max_token_lifetime_seconds == 600
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://idp.example", "auction-edge")
    assert settings.jwt_algorithm == "HS256"


# Issuer and audience


def test_issuer_and_audience_are_checked_when_configured() -> None:
    verifier = TokenVerifier(SECRET, issuer="https://idp.example", audience="auction-edge")
    good = claims(iss="https://idp.example", aud=["other", "auction-edge"])
    assert verifier.verify(jwt.encode(good, SECRET)).sub == "alice"
    for wrong in (
        {"iss": "https://evil.example"},
        {"aud": "other"},
        {"iss": None},
        {"aud": None},
    ):
        token_claims = {key: value for key, value in {**good, **wrong}.items() if value is not None}
        rejected(verifier, jwt.encode(token_claims, SECRET))


def test_issuer_and_audience_are_off_by_default() -> None:
    """Any `iss` passes; a token naming an audience is refused (RFC 7519 §4.1.3: this service has none)."""
    verifier = TokenVerifier(SECRET)
    verifier.verify(jwt.encode(claims(iss="https://anyone.example"), SECRET))
    rejected(verifier, jwt.encode(claims(aud="some-api"), SECRET))


async def test_issuer_setting_reaches_the_gateway() -> None:
    settings = make_settings(jwt_issuer="https://idp.example")
    async with running_app(settings) as (_, client):
        no_iss = bearer(make_token())
        assert (await client.post("/items/lot-1/bid", json={"amount": 1}, headers=no_iss)).status_code == 401
        with_iss = bearer(make_token(iss="https://idp.example"))
        assert (
            await client.post("/items/lot-1/bid", json={"amount": 1}, headers=with_iss)
        ).status_code == 503


# JWKS


def oct_jwk(kid: str, secret: str) -> dict[str, str]:
    k = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    return {"kty": "oct", "kid": kid, "k": k, "alg": "HS256", "use": "sig"}


class JwksServer:
    """A real HTTP server serving `document` at /jwks and counting fetches."""

    def __init__(self, *keys: dict[str, str]) -> None:
        self.document: Any = {"keys": list(keys)}
        self.fetches = 0
        self._fetched = asyncio.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/jwks"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.fetches += 1
        self._fetched.set()
        body = self.document if isinstance(self.document, bytes) else orjson.dumps(self.document)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def wait_for_fetches(self, count: int) -> None:
        async with asyncio.timeout(scaled(5)):
            while self.fetches < count:
                self._fetched.clear()
                await self._fetched.wait()


@asynccontextmanager
async def jwks_server(*keys: dict[str, str]) -> AsyncIterator[JwksServer]:
    app = JwksServer(*keys)
    config = uvicorn.Config(app, port=app.port, log_level="warning", lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(scaled(10)):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield app
    finally:
        server.should_exit = True
        await task


def signed(secret: str, kid: str | None, **extra: Any) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(**extra), secret, algorithm="HS256", headers=headers)


def jwks_verifier(url: str, min_refresh: float = 0.0) -> TokenVerifier:
    keys = JwksKeys(url, "HS256", timeout=scaled(2), min_refresh_seconds=min_refresh)
    return TokenVerifier(keys=keys, algorithm="HS256")


async def test_jwks_keys_are_fetched_on_first_use_and_by_kid() -> None:
    async with jwks_server(oct_jwk("k1", KEY_1), oct_jwk("k2", KEY_2)) as server:
        verifier = jwks_verifier(server.url)
        assert (await verifier.authenticate(f"Bearer {signed(KEY_2, 'k2')}")).sub == "alice"
        assert (await verifier.authenticate(f"Bearer {signed(KEY_1, 'k1')}")).sub == "alice"
        assert server.fetches == 1
        with pytest.raises(ProblemError) as raised:
            await verifier.authenticate(f"Bearer {signed(KEY_2, 'k1')}")  # right kid, wrong key
        assert raised.value.status == 401


async def test_jwks_rotation_is_picked_up_and_withdrawn_keys_stop_working() -> None:
    """A token naming a new kid triggers a refresh; the refreshed set no longer has k1, and the
    verified-token cache is emptied with it."""
    async with jwks_server(oct_jwk("k1", KEY_1)) as server:
        verifier = jwks_verifier(server.url)
        old = f"Bearer {signed(KEY_1, 'k1')}"
        await verifier.authenticate(old)
        server.document = {"keys": [oct_jwk("k2", KEY_2)]}
        assert (await verifier.authenticate(f"Bearer {signed(KEY_2, 'k2')}")).sub == "alice"
        with pytest.raises(ProblemError) as raised:
            await verifier.authenticate(old)
        assert raised.value.status == 401
        assert "signing key" in raised.value.detail


async def test_background_refresh_withdraws_a_key_from_cached_tokens() -> None:
    """The lifespan's periodic refresh alone (no unknown kid involved) makes a withdrawn key's
    already-verified tokens stop working."""
    async with jwks_server(oct_jwk("k1", KEY_1), oct_jwk("k2", KEY_2)) as server:
        verifier = jwks_verifier(server.url)
        old = f"Bearer {signed(KEY_1, 'k1')}"
        refresher = asyncio.create_task(verifier.refresh_keys_every(0.05))
        try:
            await server.wait_for_fetches(1)
            await verifier.authenticate(old)  # verified and cached
            server.document = {"keys": [oct_jwk("k2", KEY_2)]}
            await server.wait_for_fetches(server.fetches + 2)
        finally:
            refresher.cancel()
        with pytest.raises(ProblemError) as raised:
            verifier.verify(old.removeprefix("Bearer "))
        assert raised.value.status == 401


async def test_unknown_kids_do_not_cause_a_fetch_each() -> None:
    """Fifty tokens with made-up kids within the refresh interval cost at most one more fetch."""
    async with jwks_server(oct_jwk("k1", KEY_1)) as server:
        verifier = jwks_verifier(server.url, min_refresh=60.0)
        await verifier.authenticate(f"Bearer {signed(KEY_1, 'k1')}")
        for i in range(50):
            with pytest.raises(ProblemError) as raised:
                await verifier.authenticate(f"Bearer {signed(KEY_1, f'made-up-{i}')}")
            assert raised.value.status == 401
        assert server.fetches == 1


async def test_unreachable_jwks_is_503_not_401() -> None:
    """No key set could ever be fetched: the caller is told to retry (503), not that its token is bad."""
    verifier = jwks_verifier(f"http://127.0.0.1:{free_port()}/jwks", min_refresh=30.0)
    with pytest.raises(ProblemError) as raised:
        await verifier.authenticate(f"Bearer {signed(KEY_1, 'k1')}")
    assert raised.value.status == 503
    assert raised.value.headers is not None
    assert int(raised.value.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        {"keys": "nope"},
        {"keys": [{"kty": "oct", "kid": "k1", "k": "AAAA", "alg": "HS512"}]},
        {"keys": [{**oct_jwk("k1", KEY_1), "use": "enc"}]},
        {"keys": [oct_jwk("k1", KEY_1)], "pad": "x" * 70_000},
    ],
    ids=["garbage", "keys not a list", "other algorithm", "encryption key", "oversized"],
)
async def test_unusable_jwks_documents_load_no_key(document: Any) -> None:
    async with jwks_server() as server:
        server.document = document
        verifier = jwks_verifier(server.url, min_refresh=30.0)
        with pytest.raises(ProblemError) as raised:
            await verifier.authenticate(f"Bearer {signed(KEY_1, 'k1')}")
        assert raised.value.status == 503


async def test_jwks_key_cannot_be_used_with_another_algorithm() -> None:
    """The kid's key is bound to the configured algorithm: an HS512 token with that kid is refused."""
    async with jwks_server(oct_jwk("k1", KEY_1)) as server:
        verifier = jwks_verifier(server.url)
        token = jwt.encode(claims(), KEY_1 * 2, algorithm="HS512", headers={"kid": "k1"})
        with pytest.raises(ProblemError) as raised:
            await verifier.authenticate(f"Bearer {token}")
        assert raised.value.status == 401


async def test_gateway_answers_through_a_jwks_verifier() -> None:
    """BearerAuth uses `authenticate`: the first bid with a JWKS-signed token fetches the keys."""
    async with jwks_server(oct_jwk("k1", KEY_1)) as server, running_app(make_settings()) as (app, client):
        app.state.edge.verifier = jwks_verifier(server.url)
        response = await client.post(
            "/items/lot-1/bid", json={"amount": 1}, headers=bearer(signed(KEY_1, "k1"))
        )
        assert response.status_code == 503  # past authentication; no bidder behind this edge
        assert server.fetches == 1


# RS256 settings


def rs256(**values: Any) -> dict[str, Any]:
    return {"jwt_algorithm": "RS256", "bidder_target": "127.0.0.1:1", **values}


def test_key_settings_need_rs256() -> None:
    with pytest.raises(ValidationError, match="need EDGE_JWT_ALGORITHM=RS256"):
        EdgeSettings.model_validate(
            {"AUCTION_JWT_SECRET": SECRET, "jwt_jwks_url": "https://idp.example/jwks"}
        )


def test_rs256_needs_exactly_one_key_source(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValidationError, match="exactly one of"):
        EdgeSettings.model_validate(rs256())
    with pytest.raises(ValidationError, match="exactly one of"):
        EdgeSettings.model_validate(rs256(jwt_public_key_file=pem, jwt_jwks_url="https://idp.example/jwks"))


@pytest.mark.skipif(HAS_CRYPTO, reason="cryptography is installed")
def test_rs256_without_cryptography_refuses_to_start() -> None:
    """Better a clear refusal at start than a gateway that answers 401 to every token."""
    with pytest.raises(ValidationError, match="needs the cryptography package"):
        EdgeSettings.model_validate(rs256(jwt_jwks_url="https://idp.example/jwks"))


# RS256 end to end (needs cryptography)


def rsa_key() -> Any:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private_key: Any) -> str:
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    pem: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


async def test_rs256_with_a_pem_file(tmp_path: Path) -> None:
    """RS256 tokens pass; HS256 tokens signed with the PEM as a secret (alg confusion) do not."""
    private_key = rsa_key()
    pem = tmp_path / "public.pem"
    pem.write_text(public_pem(private_key))
    settings = EdgeSettings.model_validate(rs256(jwt_public_key_file=pem))
    async with running_app(settings) as (_, client):
        good = jwt.encode(claims(), private_key, algorithm="RS256")
        response = await client.post("/items/lot-1/bid", json={"amount": 1}, headers=bearer(good))
        assert response.status_code == 503
        forged = make_token()  # HS256 with the shared secret: not accepted under RS256
        response = await client.post("/items/lot-1/bid", json={"amount": 1}, headers=bearer(forged))
        assert response.status_code == 401


async def test_rs256_with_a_jwks_url() -> None:
    private_key = rsa_key()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    async with jwks_server({**jwk, "kid": "r1", "alg": "RS256", "use": "sig"}) as server:
        settings = EdgeSettings.model_validate(rs256(jwt_jwks_url=server.url))
        async with running_app(settings) as (_, client):
            token = jwt.encode(claims(), private_key, algorithm="RS256", headers={"kid": "r1"})
            response = await client.post("/items/lot-1/bid", json={"amount": 1}, headers=bearer(token))
            assert response.status_code == 503


def test_private_key_file_is_refused(tmp_path: Path) -> None:
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    private_key = rsa_key()
    pem = tmp_path / "private.pem"
    pem.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValidationError, match="private key"):
        EdgeSettings.model_validate(rs256(jwt_public_key_file=pem))
