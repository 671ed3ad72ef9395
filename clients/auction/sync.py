"""`AuctionClient`: the blocking face of `AsyncAuctionClient`, not a second implementation.

Each sync client runs the async one on a private event loop in a daemon thread and waits for each
call; iterators pull one element at a time through the same loop. Behaviour, retries and errors are
therefore exactly the async client's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import httpx

from auction.models import Bid, BidResult, BidsPage, Item, ItemList, SoftCloseRequest, Status
from auction.notices import DEFAULT_WS_URL, Notice, NoticeStream
from auction.rest import DEFAULT_URL, AsyncAuctionClient
from auction.retry import RetryPolicy

T = TypeVar("T")


class _Portal:
    """An event loop on its own thread; `call` runs a coroutine there and returns its result."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="auction-sdk", daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self.call(_next(iterator))
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


class AuctionClient:
    """Blocking REST client; see `AsyncAuctionClient` for the behaviour of every method."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._portal = _Portal()
        self._token = token
        self._async = AsyncAuctionClient(base_url, token, timeout=timeout, retry=retry, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._portal.call(self._async.aclose())
        self._portal.close()

    def create_item(
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
        return self._portal.call(
            self._async.create_item(
                title, currency=currency, starting_price=starting_price, min_increment=min_increment,
                ends_at=ends_at, starts_at=starts_at, description=description, increments=increments,
                buy_now_price=buy_now_price, reserve_price=reserve_price, soft_close=soft_close,
            )
        )  # fmt: skip

    def get_item(self, item_id: str) -> Item:
        return self._portal.call(self._async.get_item(item_id))

    def list_items(
        self, *, status: Status | str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ItemList:
        return self._portal.call(self._async.list_items(status=status, limit=limit, cursor=cursor))

    def iter_items(self, *, status: Status | str | None = None, page_size: int = 50) -> Iterator[Item]:
        return self._portal.iterate(self._async.iter_items(status=status, page_size=page_size))

    def place_bid(
        self,
        item_id: str,
        amount: int | None = None,
        *,
        max_amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> BidResult:
        return self._portal.call(
            self._async.place_bid(item_id, amount, max_amount=max_amount, idempotency_key=idempotency_key)
        )

    def buy_now(self, item_id: str, *, idempotency_key: str | None = None) -> BidResult:
        return self._portal.call(self._async.buy_now(item_id, idempotency_key=idempotency_key))

    def list_bids(self, item_id: str, *, limit: int = 50, before_seq: int | None = None) -> BidsPage:
        return self._portal.call(self._async.list_bids(item_id, limit=limit, before_seq=before_seq))

    def iter_bids(self, item_id: str, *, page_size: int = 50) -> Iterator[Bid]:
        return self._portal.iterate(self._async.iter_bids(item_id, page_size=page_size))

    def ready(self) -> bool:
        return self._portal.call(self._async.ready())

    def watch_notices(
        self, ws_url: str = DEFAULT_WS_URL, *, token: str | None = None, **options: Any
    ) -> Iterator[Notice]:
        """Blocking `auction.watch_notices`: the notices of `token` (default: this client's) as they come;
        leaving the loop closes the connection."""
        bearer = token or self._token
        if not bearer:
            raise ValueError("notices need a bidder token: give token= or create the client with one")
        stream = NoticeStream(bearer, ws_url, **options)
        try:
            yield from self._portal.iterate(aiter(stream))
        finally:
            self._portal.call(stream.aclose())
