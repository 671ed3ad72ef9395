"""HTTP semantics at the edge: `Allow` lists every method of a path (405 and OPTIONS), HEAD is served
as GET, every answer says `nosniff` and `no-store`, query integers are bounded (int64) and the OpenAPI
document says so, and money in bodies is a JSON integer literal, documented as such."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from auction_contract.rules import MAX_AMOUNT
from edge_gateway.app import create_app
from tests.test_edge_requests import assert_problem
from tests.test_edge_support import bearer, fake_upstream, make_settings, make_token, running_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

INT64_MAX = 2**63 - 1


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings()) as (_, http):
        yield http


ALLOW = {
    "/items": "GET, HEAD, POST, OPTIONS",
    "/items/lot-1": "GET, HEAD, OPTIONS",
    "/items/lot-1/bid": "POST, OPTIONS",
    "/items/lot-1/bids": "GET, HEAD, OPTIONS",
    "/healthz": "GET, HEAD, OPTIONS",
    "/openapi.json": "GET, HEAD, OPTIONS",
}


@pytest.mark.parametrize(("path", "allow"), ALLOW.items())
async def test_options_is_204_with_every_method_of_the_path(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    """OPTIONS /items lists POST too (it used to say only `GET`, the first route's methods)."""
    response = await client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allow
    assert response.content == b""


@pytest.mark.parametrize(("path", "allow"), ALLOW.items())
async def test_405_allow_lists_every_method_of_the_path(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    response = await client.request("PATCH", path)
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == allow


async def test_options_on_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.options("/no/such/path"), 404, "not-found")


async def test_head_is_served_as_get_without_a_body() -> None:
    """HEAD gets GET's status and headers (Content-Length included); a POST-only path still says 405."""
    async with (
        fake_upstream() as upstream,
        running_app(make_settings(bidder_target=upstream.target)) as (_, client),
    ):
        get = await client.get("/items/lot-1")
        head = await client.head("/items/lot-1")
        assert head.status_code == get.status_code == 200
        assert head.headers["content-length"] == get.headers["content-length"]
        assert head.headers["content-type"] == "application/json"
        assert (await client.head("/items/lot-1/bid")).status_code == 405


ANSWERS = [
    ("GET", "/healthz", None),
    ("GET", "/items/lot-1", None),
    ("GET", "/no/such/path", None),
    ("DELETE", "/items", None),
    ("OPTIONS", "/items", None),
    ("POST", "/items/lot-1/bid", {"amount": 100}),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ANSWERS, ids=[f"{m} {p}" for m, p, _ in ANSWERS])
async def test_every_answer_has_nosniff_and_no_store(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Successes, problems (404, 405, 401, 503) and documents alike."""
    response = await client.request(method, path, json=body)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_before_seq_above_int64_is_422_not_500() -> None:
    """2**63 used to reach the protobuf setter and fail there (500); it is a validation error now,
    and the largest int64 still goes through to the archive."""
    async with (
        fake_upstream() as upstream,
        running_app(make_settings(history_target=upstream.target)) as (_, client),
    ):
        for value in (INT64_MAX + 1, 10**30, "9" * 5000):
            response = await client.get(f"/items/lot-1/bids?before_seq={value}")
            problem = assert_problem(response, 422, "validation-error")
            assert problem["errors"][0]["loc"] == ["query", "before_seq"]
        response = await client.get(f"/items/lot-1/bids?before_seq={INT64_MAX}")
        assert response.status_code == 200, response.text
        assert upstream.history.calls[-1].before_seq == INT64_MAX


@pytest.mark.parametrize("query", ["limit=9223372036854775808", "limit=-1", "limit=1e3"])
async def test_out_of_range_limit_is_422(query: str) -> None:
    async with running_app(make_settings(history_target="127.0.0.1:1")) as (_, client):
        for path in ("/items", "/items/lot-1/bids"):
            problem = assert_problem(await client.get(f"{path}?{query}"), 422, "validation-error")
            assert problem["errors"][0]["loc"] == ["query", "limit"]


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(make_settings()).openapi()
    return document


def _query(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    parameters = openapi["paths"][path]["get"]["parameters"]
    (parameter,) = (p for p in parameters if p["name"] == name)
    schema: dict[str, Any] = parameter["schema"]
    first: dict[str, Any] = schema.get("anyOf", [schema])[0]  # `int | None` is anyOf[int, null]
    return first


def test_openapi_states_the_query_bounds(openapi: dict[str, Any]) -> None:
    before_seq = _query(openapi, "/items/{item_id}/bids", "before_seq")
    assert (before_seq["minimum"], before_seq["maximum"]) == (1, INT64_MAX)
    for path in ("/items", "/items/{item_id}/bids"):
        limit = _query(openapi, path, "limit")
        assert (limit["minimum"], limit["maximum"]) == (1, 200)


MONEY = [
    ("BidRequest", "amount"),
    ("BidRequest", "max_amount"),
    ("CreateItemRequest", "starting_price"),
    ("CreateItemRequest", "min_increment"),
    ("CreateItemRequest", "reserve_price"),
    ("CreateItemRequest", "buy_now_price"),
    ("IncrementStepRequest", "from"),
    ("IncrementStepRequest", "increment"),
]


@pytest.mark.parametrize(("model", "field"), MONEY)
def test_openapi_says_money_is_any_integral_number(openapi: dict[str, Any], model: str, field: str) -> None:
    """JSON Schema's `integer` admits 7571281.0; the server does too, and the document says so."""
    schema = openapi["components"]["schemas"][model]["properties"][field]
    assert schema["type"] in ("integer", ["integer", "null"])  # the optional ones may be null
    assert (schema["minimum"] in (0, 1), schema["maximum"]) == (True, MAX_AMOUNT)
    if field in ("amount", "max_amount", "starting_price", "min_increment"):
        assert "100.0" in schema["description"]
        assert "100.5" in schema["description"]


@pytest.mark.parametrize("amount", [b"7571281.0", b"7.571281e6", b"7571281e0"])
async def test_integral_float_amount_passes_validation(client: httpx.AsyncClient, amount: bytes) -> None:
    """As the document says: the attack's 7571281.0, and the same number with an exponent, are valid
    (no bidder is reachable here, so the answer is the 503 that comes after validation)."""
    headers = {**bearer(make_token()), "content-type": "application/json"}
    response = await client.post("/items/lot-1/bid", content=b'{"amount": ' + amount + b"}", headers=headers)
    assert_problem(response, 503, "unavailable")


@pytest.mark.parametrize("amount", [b"7571281.5", b"7.5712815e6", b"1e300"])
async def test_fractional_or_huge_amount_is_refused(client: httpx.AsyncClient, amount: bytes) -> None:
    headers = {**bearer(make_token()), "content-type": "application/json"}
    response = await client.post("/items/lot-1/bid", content=b'{"amount": ' + amount + b"}", headers=headers)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "amount"]
