"""Authentication and authorisation at the edge: every bad token is a 401 problem, a bidder cannot
create items, and the verified-token cache never outlives a token's `exp`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from edge_gateway.auth import Principal, TokenVerifier
from edge_gateway.problems import ProblemError
from tests.test_edge_support import SECRET, bearer, make_settings, make_token, running_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

NEW_ITEM = {
    "title": "Vase",
    "currency": "EUR",
    "starting_price": 100,
    "min_increment": 10,
    "ends_at": "2099-01-01T00:00:00Z",
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings()) as (_, http):
        yield http


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["type"] == "unauthorized"
    assert body["status"] == 401
    assert {"title", "detail"} <= body.keys()


BAD_AUTHORIZATION = {
    "missing": None,
    "empty": "",
    "scheme only": "Bearer",
    "scheme and blank": "Bearer   ",
    "basic scheme": "Basic YWxpY2U6c2VjcmV0",
    "not a jwt": "Bearer not-a-jwt",
    "two segments": "Bearer abc.def",
    "huge": "Bearer " + "a" * 10_000,
    "expired": f"Bearer {make_token(expires_in=-30)}",
    "wrong secret": f"Bearer {make_token(secret='another-secret-of-sufficient-length-123')}",
    "alg none": f"Bearer {make_token(algorithm='none')}",
    "alg HS512": f"Bearer {make_token(algorithm='HS512', secret=SECRET * 2)}",
    "unknown role": f"Bearer {make_token(role='auctioneer')}",
    "missing exp": f"Bearer {make_token(drop=('exp',))}",
    "missing sub": f"Bearer {make_token(drop=('sub',))}",
    "missing role": f"Bearer {make_token(drop=('role',))}",
    "sub with spaces": f"Bearer {make_token(sub='alice smith')}",
    "sub too long": f"Bearer {make_token(sub='a' * 65)}",
    "non-numeric exp": f"Bearer {make_token(exp='tomorrow')}",
    "future nbf": f"Bearer {make_token(nbf=4_000_000_000)}",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_token_on_bid_is_401_problem(client: httpx.AsyncClient, authorization: str | None) -> None:
    """Every missing, malformed, expired, forged or incomplete token is a 401 with a Bearer challenge."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post("/items/lot-1/bid", json={"amount": 100}, headers=headers)
    assert_unauthorized(response)


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_token_on_create_is_401_problem(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    """Creating items rejects the same tokens the same way."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert_unauthorized(await client.post("/items", json=NEW_ITEM, headers=headers))


async def test_authentication_comes_before_body_validation(client: httpx.AsyncClient) -> None:
    """An anonymous caller learns nothing about the body rules: 401, not 422 or 415."""
    response = await client.post(
        "/items/lot-1/bid", content=b"nonsense", headers={"content-type": "text/plain"}
    )
    assert_unauthorized(response)


async def test_bidder_creating_item_is_403_problem(client: httpx.AsyncClient) -> None:
    """A valid bidder token may bid but not create items."""
    response = await client.post("/items", json=NEW_ITEM, headers=bearer(make_token(role="bidder")))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "forbidden"


async def test_lowercase_bearer_scheme_is_accepted(client: httpx.AsyncClient) -> None:
    """The auth scheme is case-insensitive (RFC 9110): a good token gets past auth (here to a 503)."""
    response = await client.post(
        "/items/lot-1/bid", json={"amount": 100}, headers={"Authorization": f"bearer {make_token()}"}
    )
    assert response.status_code == 503


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_verifier_returns_principal_from_claims() -> None:
    """sub, role and exp come from the verified claims."""
    token = make_token(sub="bob@example.com", role="admin", expires_in=100)
    principal = TokenVerifier(SECRET).verify(token)
    assert principal.sub == "bob@example.com"
    assert principal.role == "admin"


def test_verifier_caches_and_rechecks_exp_on_hit() -> None:
    """A cached token is served without decoding, but stops working the moment its exp passes."""
    clock = FakeClock(0.0)
    verifier = TokenVerifier(SECRET, clock=clock)
    token = make_token(expires_in=60)
    clock.now = time.time()
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache: the same object
    clock.now = first.exp + 0.001
    with pytest.raises(ProblemError) as raised:
        verifier.verify(token)
    assert raised.value.status == 401
    assert "expired" in raised.value.detail


def test_verifier_cache_is_bounded() -> None:
    """The cache never holds more than its size; the oldest entries go first."""
    verifier = TokenVerifier(SECRET, cache_size=3)
    tokens = [make_token(sub=f"user{i}") for i in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._cache) == 3
    assert list(verifier._cache) == tokens[2:]


def test_verifier_does_not_cache_failures() -> None:
    """Rejected tokens leave no trace, so junk cannot evict good entries."""
    verifier = TokenVerifier(SECRET)
    for junk in ("a.b.c", make_token(secret="x" * 40), make_token(role="root")):
        with pytest.raises(ProblemError):
            verifier.verify(junk)
    assert verifier._cache == {}


def test_principal_is_immutable() -> None:
    """A cached principal is shared between requests, so it must not be mutable."""
    principal = Principal(sub="alice", role="bidder", exp=1.0)
    with pytest.raises(AttributeError):
        principal.sub = "mallory"  # type: ignore[misc]
