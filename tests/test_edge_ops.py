"""Liveness, readiness against the bidder's gRPC health service, metrics, and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from auction_contract.rules import MAX_AMOUNT
from tests.test_edge_support import bearer, fake_upstream, make_settings, make_token, running_app


async def test_healthz_is_200_without_a_bidder() -> None:
    async with running_app(make_settings()) as (_, client):
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_readyz_is_503_problem_when_bidder_unreachable() -> None:
    """Nobody listens on the bidder target: not ready, answered within the ~1 s health deadline."""
    async with running_app(make_settings()) as (_, client):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "not-ready"
        assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("serving", "status"), [(True, 200), (False, 503)])
async def test_readyz_follows_the_bidders_health(serving: bool, status: int) -> None:
    """SERVING -> 200; NOT_SERVING (e.g. Redis gone behind the bidder) -> 503."""
    async with (
        fake_upstream(serving=serving) as upstream,
        running_app(make_settings(bidder_target=upstream.target)) as (_, client),
    ):
        assert (await client.get("/readyz")).status_code == status


async def test_metrics_count_requests_by_route_and_grpc_errors_by_code() -> None:
    async with running_app(make_settings()) as (_, client):
        await client.get("/items/lot-1")
        await client.post("/items/lot-1/bid", json={"amount": 1}, headers=bearer(make_token()))
        await client.get("/this/does/not/exist/" + "x" * 100)
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert 'edge_http_requests_total{method="GET",route="/items/{item_id}",status="503"} 1.0' in text
        assert 'edge_http_requests_total{method="POST",route="/items/{item_id}/bid",status="503"} 1.0' in text
        assert 'route="<unmatched>",status="404"' in text
        assert 'edge_grpc_errors_total{code="UNAVAILABLE",method="GetItem"} 1.0' in text
        assert 'edge_http_request_duration_seconds_bucket{le="0.005",route="/items/{item_id}"}' in text
        assert "x" * 100 not in text  # unmatched paths do not become labels


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    from edge_gateway.app import create_app

    document: dict[str, Any] = create_app(make_settings()).openapi()
    return document


ROUTES = {
    ("post", "/items/{item_id}/bid"): {"201", "401", "404", "409", "413", "415", "422", "429", "503"},
    ("post", "/items"): {"201", "401", "403", "413", "415", "422", "429", "503"},
    ("get", "/items/{item_id}"): {"200", "404", "503"},
    ("get", "/items"): {"200", "422", "503"},
    ("get", "/items/{item_id}/bids"): {"200", "404", "422", "503"},
}


@pytest.mark.parametrize(("method", "path"), ROUTES.keys())
def test_openapi_documents_every_problem_response(openapi: dict[str, Any], method: str, path: str) -> None:
    """Each route lists its problem statuses as application/problem+json with the schema and examples."""
    operation = openapi["paths"][path][method]
    assert ROUTES[(method, path)] <= set(operation["responses"])
    for status, response in operation["responses"].items():
        if status.startswith(("4", "5")):
            content = response["content"]["application/problem+json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert content["examples"], (path, status)
            for example in content["examples"].values():
                assert example["value"]["status"] == int(status)


def test_openapi_has_bodies_examples_and_security(openapi: dict[str, Any]) -> None:
    bid = openapi["paths"]["/items/{item_id}/bid"]["post"]
    body = bid["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/BidRequest"}
    assert body["examples"]
    assert bid["security"] == [{"bearerAuth": []}]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in bid["parameters"])
    schemas = openapi["components"]["schemas"]
    assert schemas["BidRequest"]["additionalProperties"] is False
    assert schemas["BidRequest"]["properties"]["amount"]["maximum"] == MAX_AMOUNT
    assert schemas["CreateItemRequest"]["examples"]
    assert schemas["Item"]["examples"]
    assert openapi["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 JWT with sub, role and exp",
    }
    bid_409 = bid["responses"]["409"]["content"]["application/problem+json"]["examples"]
    assert bid_409["bid-too-low"]["value"]["min_next_bid"] == 155000
    assert "Retry-After" in bid["responses"]["429"]["headers"]
    assert "security" not in openapi["paths"]["/items/{item_id}"]["get"]


async def test_openapi_and_docs_are_served() -> None:
    async with running_app(make_settings()) as (_, client):
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "Auction edge gateway"
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
