"""Who may call the platform's gRPC servers: a shared service token, and TLS (or mutual TLS) as an option.

The bidder trusts its callers to name the bidder (`PlaceBidRequest.bidder` is the token's `sub`, checked
by the edge), so a process that can reach its port must not be able to call it. Two layers, each
optional and both configured by the same variables in every service:

- `AUCTION_SERVICE_TOKEN`: a shared secret. Servers refuse calls to their protected services without
  `auction-service-token: <token>` metadata (UNAUTHENTICATED); clients add it to every call. Health and
  reflection stay open, for probes and grpcurl. (`authorization` stays free for an operator's own
  credential, such as the bidder's admin token.)
- `AUCTION_GRPC_TLS_CERT_FILE` / `..._KEY_FILE`: the server's certificate and key (PEM), and
  `AUCTION_GRPC_TLS_CA_FILE`: the CA that clients verify servers with; with `AUCTION_GRPC_TLS_MUTUAL` the
  servers also require a client certificate signed by that CA, and clients present theirs (the same
  cert/key files). Unset: plain HTTP/2 inside the private network, as before.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from pydantic import BaseModel, Field, SecretStr

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

METADATA_KEY = "auction-service-token"

# grpc's stubs make the interceptor bases generic; at run time they are plain classes.
if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _UnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor
    _UnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor


class ServiceAuth(BaseModel):
    """The fields every service's settings carry (mixed into each `BaseSettings`), unprefixed."""

    service_token: SecretStr | None = Field(default=None, validation_alias="AUCTION_SERVICE_TOKEN")
    grpc_tls_cert_file: Path | None = Field(default=None, validation_alias="AUCTION_GRPC_TLS_CERT_FILE")
    grpc_tls_key_file: Path | None = Field(default=None, validation_alias="AUCTION_GRPC_TLS_KEY_FILE")
    grpc_tls_ca_file: Path | None = Field(default=None, validation_alias="AUCTION_GRPC_TLS_CA_FILE")
    grpc_tls_mutual: bool = Field(default=False, validation_alias="AUCTION_GRPC_TLS_MUTUAL")

    @property
    def token(self) -> str | None:
        value = self.service_token.get_secret_value() if self.service_token is not None else ""
        return value or None


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def server_credentials(auth: ServiceAuth) -> grpc.ServerCredentials | None:
    """TLS credentials for a server, or None for a plain port."""
    if auth.grpc_tls_cert_file is None or auth.grpc_tls_key_file is None:
        return None
    pair = [(auth.grpc_tls_key_file.read_bytes(), auth.grpc_tls_cert_file.read_bytes())]
    if auth.grpc_tls_mutual:
        ca = _read(auth.grpc_tls_ca_file)
        return grpc.ssl_server_credentials(pair, root_certificates=ca, require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def channel_credentials(auth: ServiceAuth) -> grpc.ChannelCredentials | None:
    """TLS credentials for a client, or None for a plain channel (no CA file configured)."""
    if auth.grpc_tls_ca_file is None:
        return None
    if auth.grpc_tls_mutual:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(auth.grpc_tls_ca_file),
            private_key=_read(auth.grpc_tls_key_file),
            certificate_chain=_read(auth.grpc_tls_cert_file),
        )
    return grpc.ssl_channel_credentials(root_certificates=_read(auth.grpc_tls_ca_file))


def presented(metadata: Any, key: str, prefix: str = "") -> str:
    """The value of `key` in a call's metadata without its `prefix` ("Bearer "), or ""."""
    for name, value in metadata or ():
        if name == key and isinstance(value, str) and value.startswith(prefix):
            return value.removeprefix(prefix)
    return ""


def token_matches(metadata: Any, token: str, key: str = METADATA_KEY, prefix: str = "") -> bool:
    """True if the metadata carries `token` under `key`, compared in constant time."""
    return hmac.compare_digest(presented(metadata, key, prefix).encode(), token.encode())


class ServiceTokenInterceptor(_ServerInterceptor):
    """Refuses calls to the protected services (method prefixes) without the service token."""

    def __init__(self, token: str, protected_services: tuple[str, ...]) -> None:
        self._token = token
        self._prefixes = tuple(f"/{name}/" for name in protected_services)

        async def refuse(request: object, context: grpc.aio.ServicerContext[object, object]) -> object:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "this service is for the platform's own services"
            )

        self._refusal = grpc.unary_unary_rpc_method_handler(refuse)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if details.method.startswith(self._prefixes) and not token_matches(
            details.invocation_metadata, self._token
        ):
            return self._refusal
        return await continuation(details)


class _TokenMetadata(_UnaryClientInterceptor):
    """Adds the service token to every unary call of a channel."""

    def __init__(self, token: str) -> None:
        self._entry = (METADATA_KEY, token)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        existing = details.metadata
        pairs = tuple(existing.items()) if hasattr(existing, "items") else tuple(existing or ())
        return await continuation(details._replace(metadata=(*pairs, self._entry)), request)


def client_interceptors(auth: ServiceAuth | None) -> list[Any]:
    """The interceptors a client channel needs (typed loosely: grpc's stubs cannot name the list)."""
    if auth is None or auth.token is None:
        return []
    return [_TokenMetadata(auth.token)]


def add_port(server: grpc.aio.Server, address: str, auth: ServiceAuth) -> int:
    """Listen on `address`, with TLS when configured; the port bound."""
    credentials = server_credentials(auth)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)
