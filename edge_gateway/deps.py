"""Typed dependencies handing the lifespan's gRPC clients to routes.

No `from __future__ import annotations` here or in the route modules: FastAPI reads these annotations
at runtime.
"""

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from edge_gateway.clients import BidderClient, HistoryClient
from edge_gateway.problems import unavailable
from edge_gateway.state import edge_state


async def bidder_client(request: Request) -> BidderClient:
    """The bidder client (503 outside the lifespan, which only happens while shutting down)."""
    client = edge_state(request).bidder
    if client is None:
        raise unavailable("the gateway is not connected to the bidder")
    return client


async def history_client(request: Request) -> HistoryClient:
    """The archiver's history client; 503 when this gateway has no history target configured."""
    client = edge_state(request).history
    if client is None:
        raise unavailable("bid history is not configured on this gateway", retry_after=None)
    return client


Bidder = Annotated[BidderClient, Depends(bidder_client)]
History = Annotated[HistoryClient, Depends(history_client)]
