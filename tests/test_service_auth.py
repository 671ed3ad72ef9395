"""Only the platform's own services reach the bidder: a shared service token, and TLS or mutual TLS.

Without these, any process on the network that could reach the bidder's port could place bids as
anyone (the bidder trusts `PlaceBidRequest.bidder`). Health stays open for probes.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from auction.v1 import bidder_pb2, bidder_pb2_grpc
from auction_common.grpc_channels import upstream_channel
from auction_common.service_auth import ServiceAuth
from core_bidder.server import BidderServer
from core_bidder.settings import BidderSettings
from tests.test_bidder_grpc import ts

TOKEN = "service-token-for-the-test"


def _settings(redis_url: str, **auth: Any) -> BidderSettings:
    return BidderSettings(redis_url=redis_url, port=0, shutdown_grace_seconds=0, **auth)


def _auth(**variables: Any) -> ServiceAuth:
    """A client's `ServiceAuth` from the variables a service would read."""
    return ServiceAuth.model_validate(variables)


@pytest.fixture
async def guarded(redis_server: object) -> AsyncIterator[str]:
    """A bidder that wants the service token; its target."""
    server = BidderServer(_settings(getattr(redis_server, "url"), AUCTION_SERVICE_TOKEN=TOKEN))  # noqa: B009
    port = await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop()


def _create() -> bidder_pb2.CreateItemRequest:
    return bidder_pb2.CreateItemRequest(
        title="Clock", currency="EUR", starting_price=100, min_increment=10, ends_at=ts(3600)
    )


async def test_calls_without_the_service_token_are_unauthenticated_and_change_nothing(guarded: str) -> None:
    trusted = upstream_channel(guarded, _auth(AUCTION_SERVICE_TOKEN=TOKEN))
    stranger = grpc.aio.insecure_channel(guarded)
    impostor = upstream_channel(guarded, _auth(AUCTION_SERVICE_TOKEN="guessed"))
    try:
        item = (await bidder_pb2_grpc.BidderServiceStub(trusted).CreateItem(_create())).item
        bid = bidder_pb2.PlaceBidRequest(item_id=item.id, bidder="mallory", amount=500)
        for channel in (stranger, impostor):
            stub = bidder_pb2_grpc.BidderServiceStub(channel)
            for call in (stub.PlaceBid(bid), stub.GetItem(bidder_pb2.GetItemRequest(item_id=item.id))):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Probes need no token.
        health = await health_pb2_grpc.HealthStub(stranger).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        after = await bidder_pb2_grpc.BidderServiceStub(trusted).GetItem(
            bidder_pb2.GetItemRequest(item_id=item.id)
        )
        assert (after.item.bid_count, after.item.seq) == (0, 1)
        placed = await bidder_pb2_grpc.BidderServiceStub(trusted).PlaceBid(bid)
        assert placed.seq == 2
    finally:
        for channel in (trusted, stranger, impostor):
            await channel.close(grace=None)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=auction-test-ca", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", "san.ext", cwd=folder)  # fmt: skip
    return folder


async def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(
    redis_server: object, certificates: Path
) -> None:
    folder = certificates
    server_side = {
        "AUCTION_GRPC_TLS_CERT_FILE": folder / "server.pem",
        "AUCTION_GRPC_TLS_KEY_FILE": folder / "server.key",
        "AUCTION_GRPC_TLS_CA_FILE": folder / "ca.pem",
        "AUCTION_GRPC_TLS_MUTUAL": True,
    }  # fmt: skip
    server = BidderServer(_settings(getattr(redis_server, "url"), **server_side))  # noqa: B009
    port = await server.start()
    target = f"localhost:{port}"
    client = _auth(
        AUCTION_GRPC_TLS_CERT_FILE=folder / "client.pem", AUCTION_GRPC_TLS_KEY_FILE=folder / "client.key",
        AUCTION_GRPC_TLS_CA_FILE=folder / "ca.pem", AUCTION_GRPC_TLS_MUTUAL=True,
    )  # fmt: skip
    with_cert = upstream_channel(target, client)
    without_cert = upstream_channel(target, _auth(AUCTION_GRPC_TLS_CA_FILE=folder / "ca.pem"))
    plain = grpc.aio.insecure_channel(target)
    try:
        item = (await bidder_pb2_grpc.BidderServiceStub(with_cert).CreateItem(_create(), timeout=10)).item
        assert item.seq == 1
        for channel in (without_cert, plain):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await bidder_pb2_grpc.BidderServiceStub(channel).GetItem(
                    bidder_pb2.GetItemRequest(item_id=item.id), timeout=5
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        for channel in (with_cert, without_cert, plain):
            await channel.close(grace=None)
        await server.stop()
