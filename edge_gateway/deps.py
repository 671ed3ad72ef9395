"""Typed dependencies handing the lifespan's gRPC clients to routes, and the read limit per client address.

No `from __future__ import annotations` here or in the route modules: FastAPI reads these annotations
at runtime.
"""

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from edge_gateway.clients import BidderClient, HistoryClient
from edge_gateway.problems import ProblemError, unavailable
from edge_gateway.ratelimit import client_key
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


async def read_limit(request: Request) -> None:
    """429 when the caller's address has spent its read budget (reads carry no token to limit by)."""
    limiter = edge_state(request).read_limiter
    if limiter is not None:
        limiter.check(client_key(request.scope), "too many reads from this address")


Bidder = Annotated[BidderClient, Depends(bidder_client)]
History = Annotated[HistoryClient, Depends(history_client)]
ReadLimit = Annotated[None, Depends(read_limit)]
"""Declared first on a read route (dependencies run in declaration order), before its client."""


async def reader_is_admin(request: Request) -> bool:
    """Whether a read comes with a valid admin token (which shows the hidden reserve). Reads need no
    token, so a missing or invalid one only means "not an admin", never an error."""
    authorization = request.headers.get("authorization")
    if not authorization:
        return False
    try:
        principal = await edge_state(request).verifier.authenticate(authorization)
    except ProblemError:
        return False
    return principal.role == "admin"


ReaderIsAdmin = Annotated[bool, Depends(reader_is_admin)]
