"""The gRPC -> HTTP problem mapping, fed with real rich statuses (google.rpc.Status + ErrorInfo)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from edge_gateway.grpc_errors import error_info, problem_for_status, problem_from_rpc_error


def rich_trailer(
    code: grpc.StatusCode,
    reason: str,
    *,
    message: str = "rejected",
    domain: str = "auction.v1",
    metadata: dict[str, str] | None = None,
) -> tuple[tuple[str, str | bytes], ...]:
    """The trailing metadata a server sends for `rpc_status.to_status(...)` (the reference helper)."""
    rich = status_pb2.Status(code=code.value[0], message=message)
    rich.details.add().Pack(
        error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata or {})
    )
    status = rpc_status.to_status(rich)
    return tuple(status.trailing_metadata)


def aio_error(
    code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str | bytes], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details, debug_error_string=None
    )


FP = grpc.StatusCode.FAILED_PRECONDITION


def test_bid_too_low_is_409_with_min_next_bid() -> None:
    """BID_TOO_LOW carries the amount to beat as an integer extension member."""
    trailer = rich_trailer(FP, "BID_TOO_LOW", metadata={"min_next_bid": "155000"})
    problem = problem_from_rpc_error(aio_error(FP, "rejected", trailer))
    assert problem.status == 409
    assert problem.problem_type == "bid-too-low"
    body = problem.body()
    assert body["min_next_bid"] == 155000
    assert isinstance(body["min_next_bid"], int)


@pytest.mark.parametrize(
    ("reason", "slug"), [("AUCTION_NOT_OPEN", "auction-not-open"), ("AUCTION_CLOSED", "auction-closed")]
)
def test_auction_state_reasons_are_409(reason: str, slug: str) -> None:
    problem = problem_from_rpc_error(aio_error(FP, "rejected", rich_trailer(FP, reason)))
    assert (problem.status, problem.problem_type) == (409, slug)
    assert "min_next_bid" not in problem.body()


def test_failed_precondition_without_details_is_generic_409() -> None:
    problem = problem_for_status(FP, "something", None)
    assert (problem.status, problem.problem_type) == (409, "conflict")


def test_reason_from_another_domain_is_ignored() -> None:
    """Only ErrorInfo of domain auction.v1 is trusted for the reason."""
    trailer = rich_trailer(FP, "BID_TOO_LOW", domain="example.com", metadata={"min_next_bid": "5"})
    assert problem_for_status(FP, "rejected", trailer).problem_type == "conflict"


def test_rich_status_with_other_code_is_ignored() -> None:
    """A rich status whose code disagrees with the call's is not used (as grpc_status does)."""
    trailer = rich_trailer(grpc.StatusCode.INVALID_ARGUMENT, "BID_TOO_LOW", metadata={"min_next_bid": "5"})
    assert problem_for_status(FP, "rejected", trailer).problem_type == "conflict"


def test_message_mismatch_does_not_lose_the_reason() -> None:
    """Unlike rpc_status.from_call, a differing message does not make us drop the details."""
    trailer = rich_trailer(FP, "AUCTION_CLOSED", message="one text")
    assert problem_for_status(FP, "another text", trailer).problem_type == "auction-closed"


def test_corrupt_details_trailer_is_ignored() -> None:
    trailer: tuple[tuple[str, str | bytes], ...] = (("grpc-status-details-bin", b"\xff\x00garbage"),)
    assert problem_for_status(FP, "x", trailer).problem_type == "conflict"


def test_bid_too_low_without_amount_still_maps() -> None:
    trailer = rich_trailer(FP, "BID_TOO_LOW", metadata={"min_next_bid": "lots"})
    problem = problem_for_status(FP, "x", trailer)
    assert problem.problem_type == "bid-too-low"
    assert "min_next_bid" not in problem.body()


def test_idempotency_key_reused_is_422() -> None:
    code = grpc.StatusCode.INVALID_ARGUMENT
    problem = problem_for_status(code, "key reused", rich_trailer(code, "IDEMPOTENCY_KEY_REUSED"))
    assert (problem.status, problem.problem_type) == (422, "idempotency-key-reused")


def test_invalid_argument_is_422_with_the_bidders_message() -> None:
    problem = problem_for_status(grpc.StatusCode.INVALID_ARGUMENT, "amount must be positive", None)
    assert (problem.status, problem.problem_type) == (422, "validation-error")
    assert problem.detail == "amount must be positive"
    assert problem.body()["errors"][0]["msg"] == "amount must be positive"


def test_not_found_is_item_not_found() -> None:
    problem = problem_from_rpc_error(aio_error(grpc.StatusCode.NOT_FOUND, "item 'x' not found"))
    assert (problem.status, problem.problem_type) == (404, "item-not-found")


@pytest.mark.parametrize(
    ("code", "status", "slug"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503, "unavailable"),
        (grpc.StatusCode.ABORTED, 503, "unavailable"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "rate-limited"),
        (grpc.StatusCode.UNAUTHENTICATED, 401, "unauthorized"),
        (grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden"),
        (grpc.StatusCode.ALREADY_EXISTS, 409, "conflict"),
        (grpc.StatusCode.OUT_OF_RANGE, 422, "validation-error"),
        (grpc.StatusCode.INTERNAL, 502, "upstream-error"),
        (grpc.StatusCode.UNKNOWN, 502, "upstream-error"),
        (grpc.StatusCode.UNIMPLEMENTED, 502, "upstream-error"),
        (grpc.StatusCode.DATA_LOSS, 502, "upstream-error"),
    ],
)
def test_status_code_table(code: grpc.StatusCode, status: int, slug: str) -> None:
    """Each code maps to one HTTP status and type; retryable ones say when to retry."""
    problem = problem_from_rpc_error(aio_error(code, "secret internals: redis at 10.0.0.7"))
    assert (problem.status, problem.problem_type) == (status, slug)
    headers = problem.headers or {}
    if status in (429, 503):
        assert headers["Retry-After"] == "1"
    if status == 401:
        assert headers["WWW-Authenticate"] == "Bearer"
    if status >= 500:
        assert "10.0.0.7" not in problem.detail


def test_error_info_reads_the_reference_encoding() -> None:
    """What grpc_status.rpc_status.to_status produces is what error_info parses."""
    info = error_info(FP, rich_trailer(FP, "BID_TOO_LOW", metadata={"min_next_bid": "7"}))
    assert info is not None
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "BID_TOO_LOW",
        "auction.v1",
        {"min_next_bid": "7"},
    )


def test_same_status_gives_byte_identical_problem() -> None:
    """Replays of the same rejection render the same bytes."""
    trailer = rich_trailer(FP, "BID_TOO_LOW", metadata={"min_next_bid": "10"})
    first = problem_for_status(FP, "x", trailer).response("/items/a/bid").body
    second = problem_for_status(FP, "x", trailer).response("/items/a/bid").body
    assert first == second
