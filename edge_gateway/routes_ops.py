"""Operational endpoints: liveness, readiness (the bidder's gRPC health), Prometheus metrics."""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from edge_gateway.openapi import problem_responses
from edge_gateway.problems import ProblemError
from edge_gateway.responses import json_response
from edge_gateway.schemas import Health
from edge_gateway.state import edge_state

READY_TIMEOUT_SECONDS = 1.0
PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_OK = b'{"status":"ok"}'

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health, summary="Liveness: 200 while the process is up")
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: 200 only while the bidder's gRPC health check answers SERVING",
    responses=problem_responses(503, include=("not-ready",), exclude=("unavailable",)),
)
async def readyz(request: Request) -> Response:
    """Without the bidder no write can succeed, so the gateway should not receive traffic."""
    bidder = edge_state(request).bidder
    if bidder is None or not await bidder.serving(READY_TIMEOUT_SECONDS):
        raise ProblemError(503, "not-ready", "the bidder is not serving", headers={"Retry-After": "1"})
    return json_response({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(edge_state(request).metrics.render(), media_type=PROMETHEUS_MEDIA_TYPE)
