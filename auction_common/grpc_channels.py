"""Client channels to the platform's own gRPC services, spread over every address the target resolves to.

A gRPC channel keeps one HTTP/2 connection and sends every call over it, so behind a plain virtual IP
(a Kubernetes ClusterIP Service) all of one edge's calls would land on one bidder pod. With a target such
as `dns:///bidder:50051` resolving to every pod (a headless Service) the round_robin policy keeps a
connection to each and spreads calls over them; for a single address it is the same as the default.
New pods are found when the name is resolved again, which the servers force by ageing connections out
(`grpc.max_connection_age_ms` on the bidder and archiver).
"""

from __future__ import annotations

import json

import grpc

from auction_common.service_auth import ServiceAuth, channel_credentials, client_interceptors

_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

CHANNEL_OPTIONS: tuple[tuple[str, str | int], ...] = (
    ("grpc.service_config", _SERVICE_CONFIG),
    # Notice a dead peer (a killed pod whose address is gone) within seconds, not at the TCP timeout.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
)


def upstream_channel(target: str, auth: ServiceAuth | None = None) -> grpc.aio.Channel:
    """A channel balanced over the target: plain inside the private network, or TLS (mutual when so
    configured), carrying the service token on every call when one is set (`auction_common.service_auth`)."""
    interceptors = client_interceptors(auth)
    credentials = channel_credentials(auth) if auth is not None else None
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS, interceptors=interceptors)
