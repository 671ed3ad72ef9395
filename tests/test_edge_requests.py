"""Bad requests never reach the bidder: each is answered by the edge with the right problem+json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from auction_contract.rules import MAX_AMOUNT
from tests.test_edge_support import bearer, make_settings, make_token, running_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx

MAX = MAX_AMOUNT
AUTH = bearer(make_token())
JSON = {**AUTH, "content-type": "application/json"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(max_body_bytes=16_384)) as (_, http):
        yield http


def assert_problem(response: httpx.Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == problem_type
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    return body


BAD_BID_BODIES = {
    "negative": b'{"amount": -5}',
    "zero": b'{"amount": 0}',
    "fraction": b'{"amount": 100.5}',
    "fractional exponent": b'{"amount": 1.0005e3}',
    "string": b'{"amount": "100"}',
    "true": b'{"amount": true}',
    "null": b'{"amount": null}',
    "list": b'{"amount": [100]}',
    "object": b'{"amount": {"value": 100}}',
    "above the bound": b'{"amount": ' + str(MAX + 1).encode() + b"}",
    "huge int": b'{"amount": ' + b"9" * 400 + b"}",
    "missing": b"{}",
    "extra bidder": b'{"amount": 100, "bidder": "mallory"}',
    "extra field": b'{"amount": 100, "currency": "EUR"}',
    "not an object": b"[100]",
    "bare number": b"100",
    "invalid json": b'{"amount": ',
    "trailing garbage": b'{"amount": 100} x',
    "empty body": b"",
    "not utf-8": b'{"amount": 100, "\xff": 1}',
    # Bid kinds: a maximum is money like an amount; one of the two must be given; max >= amount.
    "null amount alone": b'{"amount": null}',
    "both null": b'{"amount": null, "max_amount": null}',
    "max below amount": b'{"amount": 2000, "max_amount": 1999}',
    "zero max": b'{"max_amount": 0}',
    "negative max": b'{"amount": 100, "max_amount": -1}',
    "fractional max": b'{"max_amount": 100.5}',
    "string max": b'{"max_amount": "100"}',
    "true max": b'{"max_amount": true}',
    "max above the bound": b'{"max_amount": ' + str(MAX + 1).encode() + b"}",
    "misspelled max": b'{"maximum": 100}',
}


@pytest.mark.parametrize("body", BAD_BID_BODIES.values(), ids=BAD_BID_BODIES.keys())
async def test_bad_bid_body_is_422_validation_error(client: httpx.AsyncClient, body: bytes) -> None:
    """Amounts must be integral numbers in 1..10^15, alone in an object; anything else is a 422 list."""
    problem = assert_problem(
        await client.post("/items/lot-1/bid", content=body, headers=JSON), 422, "validation-error"
    )
    assert problem["errors"], problem
    for error in problem["errors"]:
        assert error["loc"][0] == "body"
        assert set(error) == {"loc", "msg", "type"}  # never the input back


async def test_validation_errors_do_not_echo_input(client: httpx.AsyncClient) -> None:
    """A hostile value is not repeated in the answer."""
    marker = "x" * 5000
    response = await client.post("/items/lot-1/bid", json={"amount": marker}, headers=AUTH)
    assert_problem(response, 422, "validation-error")
    assert marker not in response.text
    assert len(response.content) < 1000


async def test_largest_amount_passes_validation(client: httpx.AsyncClient) -> None:
    """The bound itself is valid; with no bidder reachable the answer is the 503 after validation."""
    response = await client.post("/items/lot-1/bid", json={"amount": MAX}, headers=AUTH)
    assert_problem(response, 503, "unavailable")


@pytest.mark.parametrize(
    "key",
    [b"x" * 129, b"has space", b"tab\tinside", "caf\u00e9".encode(), b"\x7f"],
    ids=["129", "space", "tab", "non-ascii", "DEL"],
)
async def test_bad_idempotency_key_is_422(client: httpx.AsyncClient, key: bytes) -> None:
    """Idempotency-Key must be 1..128 printable ASCII characters."""
    headers = [(name.encode(), value.encode()) for name, value in AUTH.items()] + [(b"Idempotency-Key", key)]
    response = await client.post("/items/lot-1/bid", json={"amount": 100}, headers=headers)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_body_of_10_mib_is_413(client: httpx.AsyncClient) -> None:
    """A declared length over the limit is refused without reading the body."""
    response = await client.post("/items/lot-1/bid", content=b"1" * (10 << 20), headers=JSON)
    assert_problem(response, 413, "payload-too-large")


async def test_chunked_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    """A body without a length is cut off as soon as it passes the limit while streaming."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 4096
            yield b" " * 4096

    response = await client.post("/items/lot-1/bid", content=chunks(), headers=JSON)
    assert_problem(response, 413, "payload-too-large")
    assert "content-length" not in response.request.headers
    assert sent < 100 * 4096  # stopped early, not after reading all 4 MiB


async def test_body_at_the_limit_is_parsed(client: httpx.AsyncClient) -> None:
    """A body of exactly the limit is read and parsed (JSON allows the trailing whitespace)."""
    body = b'{"amount": 100}'
    padded = body + b" " * (16_384 - len(body))
    response = await client.post("/items/lot-1/bid", content=padded, headers=JSON)
    assert_problem(response, 503, "unavailable")


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
async def test_wrong_content_type_is_415(client: httpx.AsyncClient, content_type: str | None) -> None:
    """JSON routes accept only application/json (UTF-8)."""
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post("/items/lot-1/bid", content=b'{"amount": 100}', headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
async def test_json_with_utf8_charset_is_accepted(client: httpx.AsyncClient, content_type: str) -> None:
    """An explicit UTF-8 charset is fine (the request then reaches the unreachable bidder: 503)."""
    headers = {**AUTH, "content-type": content_type}
    response = await client.post("/items/lot-1/bid", content=b'{"amount": 100}', headers=headers)
    assert_problem(response, 503, "unavailable")


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404, "not-found")


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/items/lot-1")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


ABSURD_IDS = ["a" * 65, "a" * 5000, "lot%201", "lot.1", "%F0%9F%90%8D", "lot%00", "lot:1", "a*b", "%27%3B--"]


async def test_encoded_slash_in_item_id_is_404_problem(client: httpx.AsyncClient) -> None:
    """A decoded `/` makes another path, which no route matches: still a 404 problem."""
    assert_problem(await client.get("/items/..%2F..%2Fetc"), 404, "not-found")


@pytest.mark.parametrize("item_id", ABSURD_IDS, ids=lambda item_id: item_id[:20])
async def test_absurd_item_id_is_404_without_bidder(client: httpx.AsyncClient, item_id: str) -> None:
    """Ids that cannot exist are answered 404 by the edge (the unreachable bidder would give 503)."""
    assert_problem(await client.get(f"/items/{item_id}"), 404, "item-not-found")
    response = await client.post(f"/items/{item_id}/bid", json={"amount": 100}, headers=AUTH)
    assert_problem(response, 404, "item-not-found")


async def test_absurd_item_id_for_history_is_404(client: httpx.AsyncClient) -> None:
    """The history route checks ids too (before needing the archiver)."""
    async with running_app(make_settings(history_target="127.0.0.1:1")) as (_, http):
        assert_problem(await http.get("/items/" + "z" * 200 + "/bids"), 404, "item-not-found")


@pytest.mark.parametrize(
    "query",
    ["status=sold", "limit=0", "limit=201", "limit=ten", "cursor=" + "c" * 1025],
)
async def test_bad_list_query_is_422(client: httpx.AsyncClient, query: str) -> None:
    problem = assert_problem(await client.get(f"/items?{query}"), 422, "validation-error")
    assert problem["errors"][0]["loc"][0] == "query"


BAD_ITEMS = {
    "fractional price": {"starting_price": 10.5},
    "string price": {"starting_price": "10"},
    "bool increment": {"min_increment": True},
    "zero increment": {"min_increment": 0},
    "negative price": {"starting_price": -1},
    "price above the bound": {"starting_price": MAX + 1},
    "NUL in title": {"title": "Va\u0000se"},
    "line break in title": {"title": "Vase\nDuo"},
    "bell in description": {"description": "ding\u0007"},
    "C1 control in description": {"description": "x\u0085y"},
    "year 481 start": {"starts_at": "0481-01-08T10:38:29Z"},
    "year 2100 end": {"ends_at": "2100-01-01T00:00:00Z"},
    "year 9999 end": {"ends_at": "9999-12-31T23:59:59Z"},
    "lowercase currency": {"currency": "eur"},
    "long currency": {"currency": "EURO"},
    "empty title": {"title": ""},
    "blank title": {"title": "   "},
    "long title": {"title": "t" * 201},
    "long description": {"description": "d" * 5001},
    "naive ends_at": {"ends_at": "2999-01-01T00:00:00"},
    "numeric ends_at": {"ends_at": 32503680000},
    "past ends_at": {"ends_at": "2001-01-01T00:00:00Z"},
    "ends before start": {"starts_at": "2999-01-02T00:00:00Z", "ends_at": "2999-01-01T00:00:00Z"},
    "extra field": {"bidder": "x"},
    # Bid kinds (CONTRACT.md "Bid kinds"): the ladder's shape, the buy-now price's bounds.
    "ladder not from 0": {"min_increment": 10, "increments": [{"from": 5, "increment": 10}]},
    "ladder not rising": {
        "increments": [
            {"from": 0, "increment": 10},
            {"from": 500, "increment": 20},
            {"from": 500, "increment": 30},
        ]
    },
    "ladder falling": {
        "increments": [
            {"from": 0, "increment": 10},
            {"from": 500, "increment": 20},
            {"from": 400, "increment": 30},
        ]
    },
    "empty ladder": {"increments": []},
    "ladder of 33 steps": {"increments": [{"from": 100 * n, "increment": 10} for n in range(33)]},
    "zero increment step": {"increments": [{"from": 0, "increment": 10}, {"from": 100, "increment": 0}]},
    "increment above the bound": {
        "increments": [{"from": 0, "increment": 10}, {"from": 100, "increment": MAX + 1}]
    },
    "from above the bound": {"increments": [{"from": 0, "increment": 10}, {"from": MAX + 1, "increment": 5}]},
    "fractional from": {"increments": [{"from": 0, "increment": 10}, {"from": 100.5, "increment": 5}]},
    "step without increment": {"increments": [{"from": 0}]},
    "step with extra member": {"increments": [{"from": 0, "increment": 10, "to": 100}]},
    "ladder not a list": {"increments": {"from": 0, "increment": 10}},
    "ladder disagreeing with min_increment": {
        "min_increment": 5,
        "increments": [{"from": 0, "increment": 10}],
    },
    "buy-now at the starting price": {"buy_now_price": 100},
    "buy-now below the starting price": {"buy_now_price": 50},
    "buy-now below the reserve": {"reserve_price": 500, "buy_now_price": 400},
    "zero buy-now": {"starting_price": 0, "buy_now_price": 0},
    "fractional buy-now": {"buy_now_price": 500.5},
    "string buy-now": {"buy_now_price": "500"},
    "buy-now above the bound": {"buy_now_price": MAX + 1},
}


@pytest.mark.parametrize("change", BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
async def test_bad_new_item_is_422(client: httpx.AsyncClient, change: dict[str, Any]) -> None:
    """Item bodies are strict too: integer money, ISO currency, bounded text, a sane time window."""
    body: dict[str, Any] = {
        "title": "Vase",
        "currency": "EUR",
        "starting_price": 100,
        "min_increment": 10,
        "ends_at": "2099-01-01T00:00:00Z",
        **change,
    }
    response = await client.post("/items", json=body, headers=bearer(make_token(role="admin")))
    assert_problem(response, 422, "validation-error")


async def test_history_not_configured_is_503(client: httpx.AsyncClient) -> None:
    """Without a history target the bids route says so with a 503 problem."""
    assert_problem(await client.get("/items/lot-1/bids"), 503, "unavailable")


async def test_unreachable_bidder_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    """gRPC UNAVAILABLE becomes 503 `unavailable` with Retry-After: 1, on reads and writes."""
    for response in (
        await client.get("/items/lot-1"),
        await client.get("/items"),
        await client.post("/items/lot-1/bid", json={"amount": 100}, headers=AUTH),
    ):
        assert_problem(response, 503, "unavailable")
        assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("change", "where", "why"),
    [
        ({"increments": [{"from": 5, "increment": 10}]}, "body.increments", "start at from = 0"),
        (
            {"increments": [{"from": 0, "increment": 10}, {"from": 0, "increment": 20}]},
            "body.increments",
            "strictly rising",
        ),
        ({"increments": [{"from": 0, "increment": 20}]}, "body.increments", "first increments step"),
        ({"buy_now_price": 100}, "body.buy_now_price", "above starting_price"),
        ({"reserve_price": 900, "buy_now_price": 800}, "body.buy_now_price", "at least reserve_price"),
    ],
    ids=["ladder-start", "ladder-rise", "ladder-min-increment", "buy-now-start", "buy-now-reserve"],
)
async def test_bid_kind_rules_at_creation_say_what_is_wrong(
    client: httpx.AsyncClient, change: dict[str, Any], where: str, why: str
) -> None:
    """Each rule of the ladder and the buy-now price is a 422 whose detail names the member and the rule."""
    body = {"title": "Vase", "currency": "EUR", "starting_price": 100, "min_increment": 10,
            "ends_at": "2099-01-01T00:00:00Z", **change}  # fmt: skip
    response = await client.post("/items", json=body, headers=bearer(make_token(role="admin")))
    problem = assert_problem(response, 422, "validation-error")
    assert where in problem["detail"]
    assert why in problem["detail"]
    assert problem["errors"][0]["loc"] == where.split(".")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{}", "give amount, max_amount or both"),
        (b'{"amount": 500, "max_amount": 400}', "max_amount must be at least amount"),
    ],
    ids=["neither", "max-below-amount"],
)
async def test_bid_terms_are_422_with_a_clear_detail(
    client: httpx.AsyncClient, body: bytes, why: str
) -> None:
    """The two bid rules JSON Schema cannot state; the detail never repeats a value sent."""
    problem = assert_problem(
        await client.post("/items/lot-1/bid", content=body, headers=JSON), 422, "validation-error"
    )
    assert why in problem["detail"]
    assert "400" not in problem["detail"]
    assert "500" not in problem["detail"]


async def test_buy_refuses_what_never_reaches_the_bidder(client: httpx.AsyncClient) -> None:
    """No token 401, an id that cannot exist 404, a bad Idempotency-Key 422; otherwise the unreachable
    bidder's 503 (the buy got past the edge's checks)."""
    assert_problem(await client.post("/items/lot-1/buy"), 401, "unauthorized")
    assert_problem(await client.post("/items/lot%201/buy", headers=AUTH), 404, "item-not-found")
    bad_key = await client.post("/items/lot-1/buy", headers={**AUTH, "Idempotency-Key": "has space"})
    assert assert_problem(bad_key, 422, "validation-error")["errors"][0]["loc"] == [
        "header",
        "Idempotency-Key",
    ]
    viewer = bearer(make_token(role="viewer"))
    assert_problem(await client.post("/items/lot-1/buy", headers=viewer), 401, "unauthorized")
    response = await client.post("/items/lot-1/buy", headers=AUTH)
    assert_problem(response, 503, "unavailable")
    assert_problem(await client.get("/items/lot-1/buy"), 405, "method-not-allowed")
