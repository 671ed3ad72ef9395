"""What every gRPC server of the platform exposes besides its own service: health and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    # One listener per process: a second process on the same port is a mistake, not a scale-out.
    ("grpc.so_reuseport", 0),
    # Callers hold long-lived HTTP/2 connections; ageing them out (GOAWAY, in-flight calls finish within
    # the grace) makes callers resolve the name again and find pods added since (see
    # auction_common.grpc_channels), so a scale-out takes load within minutes.
    ("grpc.max_connection_age_ms", 300_000),
    ("grpc.max_connection_age_grace_ms", 30_000),
    # Callers ping every 20 s (grpc_channels); allow it rather than answer with "too_many_pings".
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


def platform_server(interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = ()) -> grpc.aio.Server:
    """A gRPC server with the platform's connection policy (`SERVER_OPTIONS`)."""
    return grpc.aio.server(options=SERVER_OPTIONS, interceptors=list(interceptors))


def add_health_and_reflection(server: grpc.aio.Server, *service_names: str) -> health_aio.HealthServicer:
    """Register the standard health service (status set by the caller) and reflection for `service_names`."""
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection([*service_names, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
    return health
