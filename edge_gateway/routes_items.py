"""The REST API (its OpenAPI document at /openapi.json): items, bids and bid history, each a thin call
to one gRPC method.

The bid route is the hot path of a bidding war, so by default its requests never reach this router:
`bid_route.RawBidRoute` answers them before FastAPI, exactly as `place_bid` here would. `place_bid`
declares the route for the OpenAPI document and is the reference the raw route is tested against (and
serves bids with `EDGE_RAW_BID_ROUTE=false`). Routes
return ready `Response`s, so FastAPI neither validates nor re-serialises the answer; `response_model`
only documents it. Item ids that cannot exist are answered 404 here without a call to the bidder.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from auction.v1 import item_pb2
from auction_contract.rules import is_item_id
from edge_gateway.auth import AdminPrincipal, BidderPrincipal
from edge_gateway.body import bid_terms, read_json
from edge_gateway.convert import (
    STATUS_VALUES,
    bid_result_json,
    bids_page_json,
    create_item_request,
    item_json,
    item_list_json,
)
from edge_gateway.deps import Bidder, History, ReaderIsAdmin, ReadLimit
from edge_gateway.openapi import json_body, problem_responses
from edge_gateway.problems import item_not_found
from edge_gateway.responses import json_response
from edge_gateway.schemas import (
    BID_REQUEST_EXAMPLE,
    BOTH_BID_EXAMPLE,
    CREATE_ITEM_EXAMPLE,
    IDEMPOTENCY_KEY_MAX_CHARS,
    IDEMPOTENCY_KEY_PATTERN,
    PROXY_BID_EXAMPLE,
    BidRequest,
    BidResult,
    BidsPage,
    CreateItemRequest,
    Item,
    ItemList,
)

router = APIRouter(tags=["items"])

INT64_MAX = 2**63 - 1

ItemId = Annotated[str, Path(description="Opaque, URL-safe, 1..64 of `[A-Za-z0-9_-]`.", examples=["lot-42"])]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_CHARS,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="1..128 printable ASCII characters. Repeating it within 24 h replays the first answer.",
        examples=["3f1c9a52-bid-1"],
    ),
]


@router.post(
    "/items/{item_id}/bid",
    status_code=201,
    response_model=BidResult,
    summary="Place a bid as the token's subject",
    responses=problem_responses(401, 404, 409, 413, 415, 422, 429, 503, exclude=("buy-now-unavailable",)),
    openapi_extra=json_body(BidRequest, BID_REQUEST_EXAMPLE, PROXY_BID_EXAMPLE, BOTH_BID_EXAMPLE),
)
async def place_bid(
    item_id: ItemId,
    request: Request,
    principal: BidderPrincipal,
    bidder: Bidder,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """`amount` (bid exactly this), `max_amount` (the platform bids for you up to it) or both (bid
    `amount` now, defend up to `max_amount`). `amount` when given, and `max_amount` when alone, must be
    at least `min_next_bid` (else 409 `bid-too-low`); `max_amount` below `amount` is 422. The highest
    maximum leads (the earlier on a tie) at the second-highest maximum plus the increment, capped at
    its own maximum; the leader may raise their own maximum (201, `leading`, the price unchanged). The
    bidder is the token's `sub`; a maximum is shown to no one else."""
    if not is_item_id(item_id):
        raise item_not_found(item_id)
    body = await read_json(request, BidRequest)
    amount, max_amount = body.amount, body.max_amount
    if max_amount is not None or amount is None:
        amount = bid_terms(amount, max_amount)
    result = await bidder.place_bid(item_id, principal.sub, amount, idempotency_key or "", max_amount)
    return json_response(bid_result_json(result), 201)


@router.post(
    "/items/{item_id}/buy",
    status_code=201,
    response_model=BidResult,
    summary="Buy the item now at its buy-now price",
    responses=problem_responses(401, 404, 409, 413, 422, 429, 503, exclude=("bid-too-low",)),
)
async def buy_now(
    item_id: ItemId,
    principal: BidderPrincipal,
    bidder: Bidder,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """While the item is open and has no bid yet, sells it to the token's `sub` at `buy_now_price` and
    closes it, in one step (a `bid` event, then `closed`). Of concurrent buyers exactly one wins; the
    others get 409 `auction-closed`. After the first bid, or without a buy-now price: 409
    `buy-now-unavailable`. Takes no body. With an `Idempotency-Key` (shared with bids), a repeat gets
    the first answer again, so a retried buy that won hears that it won."""
    if not is_item_id(item_id):
        raise item_not_found(item_id)
    result = await bidder.buy_now(item_id, principal.sub, idempotency_key or "")
    return json_response(bid_result_json(result), 201)


@router.get(
    "/items/{item_id}",
    response_model=Item,
    summary="Get an item",
    responses=problem_responses(404, 429, 503),
)
async def get_item(item_id: ItemId, _read_limit: ReadLimit, bidder: Bidder, admin: ReaderIsAdmin) -> Response:
    """The item; with an admin token its hidden `reserve_price` too."""
    if not is_item_id(item_id):
        raise item_not_found(item_id)
    return json_response(item_json(await bidder.get_item(item_id), admin=admin))


@router.get(
    "/items",
    response_model=ItemList,
    summary="List items",
    responses=problem_responses(422, 429, 503, exclude=("idempotency-key-reused",)),
)
async def list_items(
    _read_limit: ReadLimit,
    bidder: Bidder,
    admin: ReaderIsAdmin,
    status: Annotated[
        Literal["scheduled", "open", "closed"] | None, Query(description="Only items in this state.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    wanted = STATUS_VALUES[status] if status is not None else item_pb2.ITEM_STATUS_UNSPECIFIED
    page = await bidder.list_items(wanted, limit, cursor or "")
    return json_response(item_list_json(page, admin=admin))


@router.post(
    "/items",
    status_code=201,
    response_model=Item,
    summary="Create an item (admin)",
    responses=problem_responses(401, 403, 413, 415, 422, 429, 503, exclude=("idempotency-key-reused",)),
    openapi_extra=json_body(CreateItemRequest, CREATE_ITEM_EXAMPLE),
)
async def create_item(request: Request, principal: AdminPrincipal, bidder: Bidder) -> Response:
    """Creates the item's auction; answers 201 with `Location: /items/{id}`."""
    body = await read_json(request, CreateItemRequest)
    item = await bidder.create_item(create_item_request(body))
    return json_response(item_json(item, admin=True), 201, {"Location": f"/items/{item.id}"})


@router.get(
    "/items/{item_id}/bids",
    response_model=BidsPage,
    summary="Bid history, newest first (from the archive)",
    responses=problem_responses(404, 422, 429, 503, exclude=("idempotency-key-reused",)),
)
async def list_bids(
    item_id: ItemId,
    _read_limit: ReadLimit,
    history: History,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    before_seq: Annotated[
        int | None,
        Query(
            ge=1,
            le=INT64_MAX,
            description="Only bids with a smaller seq (`next_before_seq`); 1..2**63-1 (int64).",
        ),
    ] = None,
) -> Response:
    if not is_item_id(item_id):
        raise item_not_found(item_id)
    page = await history.list_bids(item_id, limit, before_seq or 0)
    return json_response(bids_page_json(page))
