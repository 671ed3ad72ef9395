"""`LeanRoute` resolves the hot routes' parameters with FastAPI's semantics, and steps aside when it must."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.routing import APIRoute

from edge_gateway.deps import bidder_client
from edge_gateway.lean_route import compile_plan
from edge_gateway.routes_items import create_item, get_item, list_bids, list_items, place_bid, router
from tests.test_edge_support import bearer, make_settings, make_token, running_app, sample_item

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi.dependencies.models import Dependant

    from auction.v1 import item_pb2


def dependant_of(endpoint: Callable[..., object]) -> Dependant:
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route.dependant
    raise LookupError(endpoint)


@pytest.mark.parametrize(
    ("endpoint", "lean"),
    [(place_bid, True), (get_item, True), (create_item, True), (list_items, False), (list_bids, False)],
    ids=["place_bid", "get_item", "create_item", "list_items", "list_bids"],
)
def test_plan_covers_the_hot_routes_only(endpoint: Callable[..., object], lean: bool) -> None:
    """Routes with query parameters keep FastAPI's solver; the write and item routes get a plan."""
    assert (compile_plan(dependant_of(endpoint)) is not None) is lean


class StubBidder:
    """Stands in for the gRPC client through FastAPI's dependency overrides."""

    async def get_item(self, item_id: str) -> item_pb2.Item:
        return sample_item(item_id)


async def test_dependency_overrides_are_honoured() -> None:
    """With overrides set, the lean routes fall back to FastAPI's solver, which applies them."""
    async with running_app(make_settings()) as (app, client):
        assert (await client.get("/items/lot-7")).status_code == 503  # the unreachable real bidder

        async def stub() -> StubBidder:
            return StubBidder()

        app.dependency_overrides[bidder_client] = stub
        response = await client.get("/items/lot-7")
        assert response.status_code == 200
        assert response.json()["id"] == "lot-7"


async def test_header_errors_match_fastapis() -> None:
    """The same bad header gives the same 422 body through the plan and through FastAPI's solver."""
    async with running_app(make_settings()) as (app, client):
        headers = {**bearer(make_token()), "Idempotency-Key": "x" * 200}
        lean = await client.post("/items/lot-1/bid", json={"amount": 5}, headers=headers)
        app.dependency_overrides[object] = object  # any override switches to the fallback
        fallback = await client.post("/items/lot-1/bid", json={"amount": 5}, headers=headers)
    assert lean.status_code == fallback.status_code == 422
    assert lean.json() == fallback.json()


async def test_dependencies_run_before_parameter_validation() -> None:
    """As in FastAPI: an anonymous request with a bad header is a 401, not a 422."""
    async with running_app(make_settings()) as (_, client):
        response = await client.post("/items/lot-1/bid", json={"amount": 5}, headers={"Idempotency-Key": ""})
        assert response.status_code == 401
