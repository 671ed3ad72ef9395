"""`AsyncAuctionClient`: the REST API as typed async calls. The sync client wraps this one.

Reads, bids and buys are retried on 429/503 and connection failures (see `RetryPolicy`); a bid or a
buy is safe to retry because every `place_bid` and `buy_now` sends an Idempotency-Key (generated unless
given) that stays the same across its retries, so a bid whose answer was lost is placed once, and a buy
that won hears that it won. Creating an item is not retried.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from auction.errors import ApiError, TransportError, error_for
from auction.models import (
    Bid,
    BidResult,
    BidsPage,
    CreateItemRequest,
    IncrementStepRequest,
    Item,
    ItemList,
    SoftCloseRequest,
    Status,
)
from auction.retry import NO_RETRY, RetryPolicy

DEFAULT_URL = "http://127.0.0.1:8080"
Model = TypeVar("Model", bound=BaseModel)


class AsyncAuctionClient:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )
        self._retry = retry or RetryPolicy()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- items ---------------------------------------------------------------------------------------

    async def create_item(
        self,
        title: str,
        *,
        currency: str,
        starting_price: int,
        min_increment: int,
        ends_at: datetime,
        starts_at: datetime | None = None,
        description: str = "",
        increments: Sequence[tuple[int, int]] | None = None,
        buy_now_price: int | None = None,
        reserve_price: int | None = None,
        soft_close: SoftCloseRequest | None = None,
    ) -> Item:
        """Admin only. Not retried: a repeated create would make a second item.

        `increments`: an increment ladder as (from, increment) pairs, the first from 0, `from` rising,
        the first increment `min_increment`. `buy_now_price`: offered until the first bid.
        `reserve_price`: hidden (admins read it); below it at the close, no sale. `soft_close`: a bid in
        the window before the end moves the end (`SoftCloseRequest(window_seconds=..., extension_seconds=...,
        max_ends_at=...)`)."""
        ladder = None
        if increments is not None:
            ladder = [
                IncrementStepRequest.model_validate({"from": start, "increment": step})
                for start, step in increments
            ]
        body = CreateItemRequest(
            title=title, description=description, currency=currency, starting_price=starting_price,
            min_increment=min_increment, starts_at=starts_at, ends_at=ends_at, increments=ladder,
            buy_now_price=buy_now_price, reserve_price=reserve_price, soft_close=soft_close,
        )  # fmt: skip
        payload = body.model_dump(mode="json", exclude_none=True, by_alias=True)
        return await self._call(Item, "POST", "/items", NO_RETRY, json=payload)

    async def get_item(self, item_id: str) -> Item:
        return await self._call(Item, "GET", f"/items/{item_id}", self._retry)

    async def list_items(
        self, *, status: Status | str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ItemList:
        """One page; `iter_items` walks them all."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = str(Status(status).value)
        if cursor:
            params["cursor"] = cursor
        return await self._call(ItemList, "GET", "/items", self._retry, params=params)

    async def iter_items(
        self, *, status: Status | str | None = None, page_size: int = 50
    ) -> AsyncIterator[Item]:
        cursor: str | None = None
        while True:
            page = await self.list_items(status=status, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- bids ----------------------------------------------------------------------------------------

    async def place_bid(
        self,
        item_id: str,
        amount: int | None = None,
        *,
        max_amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> BidResult:
        """Bid as the token's bidder: `amount` (exactly this), `max_amount` (a proxy bid: the platform bids
        for you up to it) or both. `result.leading` says whether you lead afterwards (a maximum may be
        beaten at once by the leader's). Raises `BidTooLow` (with `min_next_bid`), `AuctionNotOpen`, ...

        The Idempotency-Key (a fresh UUID unless given) is reused by every retry of this call.
        """
        if amount is None and max_amount is None:
            raise ValueError("place_bid needs amount, max_amount or both")
        body: dict[str, int] = {} if amount is None else {"amount": amount}
        if max_amount is not None:
            body["max_amount"] = max_amount
        key = idempotency_key or uuid.uuid4().hex
        return await self._call(
            BidResult, "POST", f"/items/{item_id}/bid", self._retry,
            json=body, headers={"Idempotency-Key": key},
        )  # fmt: skip

    async def buy_now(self, item_id: str, *, idempotency_key: str | None = None) -> BidResult:
        """Buy the item at its `buy_now_price`: sold to the token's bidder and closed at once. Raises
        `AuctionClosed` when another buyer was first (or the auction ended), `BuyNowUnavailable` after
        the first bid or without a buy-now price, `AuctionNotOpen` before the start.

        The Idempotency-Key (a fresh UUID unless given) is reused by every retry, so a buy whose answer
        was lost, retried, hears that it won rather than "closed".
        """
        key = idempotency_key or uuid.uuid4().hex
        return await self._call(
            BidResult, "POST", f"/items/{item_id}/buy", self._retry, headers={"Idempotency-Key": key}
        )

    async def list_bids(self, item_id: str, *, limit: int = 50, before_seq: int | None = None) -> BidsPage:
        """One page of the archived history, newest first; `iter_bids` walks them all."""
        params: dict[str, Any] = {"limit": limit}
        if before_seq is not None:
            params["before_seq"] = before_seq
        return await self._call(BidsPage, "GET", f"/items/{item_id}/bids", self._retry, params=params)

    async def iter_bids(self, item_id: str, *, page_size: int = 50) -> AsyncIterator[Bid]:
        before: int | None = None
        while True:
            page = await self.list_bids(item_id, limit=page_size, before_seq=before)
            for bid in page.bids:
                yield bid
            if page.next_before_seq is None:
                return
            before = page.next_before_seq

    # -- plumbing ------------------------------------------------------------------------------------

    async def ready(self) -> bool:
        """Whether the edge says it can serve (its bidder is reachable)."""
        try:
            response = await self._http.get("/readyz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _call(self, model: type[Model], method: str, path: str, retry: RetryPolicy, **kw: Any) -> Model:
        async for attempt in retry.retrying():
            with attempt:
                response = await self._send(method, path, **kw)
        return model.model_validate_json(response.content)

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {path}: {exc!r}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    problem.setdefault("status", response.status_code)
    retry_after: float | None = None
    raw = response.headers.get("retry-after")
    if raw is not None:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    return error_for(response.status_code, problem, retry_after)
