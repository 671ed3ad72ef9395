"""`auction`: the platform from a terminal. Human output by default, `--json` for scripts.

Exit codes: 0 done; 1 other API error; 2 usage; 3 bid, buy or item refused (too low, not open, closed,
buy-now unavailable, invalid); 4 not found; 5 not authenticated or not allowed; 6 service unavailable
or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel

from auction.errors import (
    ApiError,
    AuctionError,
    BidTooLow,
    ClientError,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from auction.live import LiveItemNotFound
from auction.models import BidResult, Status
from auction.money import format_money
from auction.notices import NoticeAuthError
from auction.notices_view import notices
from auction.rest import DEFAULT_URL, AsyncAuctionClient
from auction.tokens import ROLES, mint_dev_token
from auction.watch import (
    buy_now_price_of,
    format_reserve,
    format_result,
    format_soft_close,
    increments_of,
    reserve_met_of,
    reserve_price_of,
    result_of,
    soft_close_of,
    watch,
)

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_AUTH, EXIT_UNAVAILABLE = range(7)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="auction", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--url", default=os.environ.get("AUCTION_URL", DEFAULT_URL), help="edge URL (env AUCTION_URL)"
    )
    p.add_argument(
        "--token", default=os.environ.get("AUCTION_TOKEN"), help="bearer token (env AUCTION_TOKEN)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="mint a development token (HS256)")
    token.add_argument("--sub", required=True)
    token.add_argument("--role", choices=ROLES, default="bidder")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument(
        "--secret", default=os.environ.get("AUCTION_JWT_SECRET"), help="env AUCTION_JWT_SECRET"
    )

    items = sub.add_parser("items", help="create, list, show items").add_subparsers(
        dest="items_command", required=True
    )
    create = items.add_parser("create", help="create an item (admin)")
    create.add_argument("--title", required=True)
    create.add_argument("--description", default="")
    create.add_argument("--currency", required=True)
    create.add_argument("--starting-price", type=int, required=True, help="minor units")
    create.add_argument(
        "--min-increment", type=int, help="minor units (default with --increments: the first step's)"
    )
    create.add_argument(
        "--increments",
        type=_ladder,
        metavar="FROM:INCREMENT,...",
        help="an increment ladder in minor units, e.g. 0:100,100000:500 (the first from 0, rising)",
    )
    create.add_argument("--buy-now-price", type=int, help="minor units; buy-now until the first bid")
    create.add_argument("--starts-at", type=_timestamp, help="RFC 3339 (default: now)")
    create.add_argument("--ends-at", type=_timestamp, required=True, help="RFC 3339")
    listing = items.add_parser("list", help="list items, newest first")
    listing.add_argument("--status", choices=("scheduled", "open", "closed"))
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    show = items.add_parser("show", help="one item")
    show.add_argument("item_id")

    bid = sub.add_parser(
        "bid", help="place a bid as the token's bidder: AMOUNT, --max N (a proxy bid) or both"
    )
    bid.add_argument("item_id")
    bid.add_argument("amount", type=int, nargs="?", help="minor units: bid exactly this")
    bid.add_argument(
        "--max", dest="max_amount", type=int, metavar="N",
        help="minor units: the platform bids for you, as others bid, up to this (shown to no one else)",
    )  # fmt: skip
    bid.add_argument("--idempotency-key", help="default: a fresh one, reused by retries")

    buy = sub.add_parser("buy", help="buy an item now at its buy-now price (closes the auction)")
    buy.add_argument("item_id")
    buy.add_argument("--idempotency-key", help="default: a fresh one, reused by retries")

    history = sub.add_parser("history", help="archived bids, newest first")
    history.add_argument("item_id")
    history.add_argument("--limit", type=int, default=50)

    watch = sub.add_parser(
        "watch", help="live view of an item's price, countdown and last bids, until it closes"
    )
    watch.add_argument("item_id")
    watch.add_argument("--ws-url", default=os.environ.get("AUCTION_WS_URL", "ws://127.0.0.1:8081"),
                       help="fan-out URL (env AUCTION_WS_URL)")  # fmt: skip
    watch.add_argument(
        "--count", type=int, default=0, help="stop after this many bids (default: when the auction closes)"
    )
    notice = sub.add_parser(
        "notices",
        help="the token's bidder's notices (outbid, won, lost, extended) as they come, across items",
    )
    notice.add_argument("--ws-url", default=os.environ.get("AUCTION_WS_URL", "ws://127.0.0.1:8081"),
                        help="fan-out URL (env AUCTION_WS_URL)")  # fmt: skip
    notice.add_argument("--count", type=int, default=0, help="stop after this many notices (default: never)")
    return p


def _ladder(text: str) -> list[tuple[int, int]]:
    """`0:100,100000:500` as (from, increment) steps; the edge checks the rules (from 0, rising)."""
    steps = []
    for part in text.split(","):
        start, colon, increment = part.strip().partition(":")
        if not colon or not start.strip().isdigit() or not increment.strip().isdigit():
            raise argparse.ArgumentTypeError(f"not FROM:INCREMENT,... in minor units: {text!r}")
        steps.append((int(start), int(increment)))
    return steps


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2030-01-01T12:00:00Z")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    command_line = parser()
    ns = command_line.parse_args(argv)
    if ns.command == "bid" and ns.amount is None and ns.max_amount is None:
        command_line.error("bid: give AMOUNT, --max N or both")
    if ns.command == "items" and ns.items_command == "create" and ns.min_increment is None:
        if not ns.increments:
            command_line.error("items create: give --min-increment (or --increments)")
        ns.min_increment = ns.increments[0][1]
    try:
        return asyncio.run(run(ns))
    except KeyboardInterrupt:
        return EXIT_OK
    except AuctionError as exc:
        return _report(exc, ns.json)


async def run(ns: argparse.Namespace) -> int:
    if ns.command == "token":
        if not ns.secret:
            print("auction token: give --secret or set AUCTION_JWT_SECRET", file=sys.stderr)
            return EXIT_USAGE
        try:
            print(mint_dev_token(ns.secret, ns.sub, ns.role, ns.ttl))
        except ValueError as exc:
            print(f"auction token: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    if ns.command == "watch":
        return await watch(ns.ws_url, ns.item_id, as_json=ns.json, count=ns.count)
    if ns.command == "notices":
        if not ns.token:
            print("auction notices: give --token or set AUCTION_TOKEN (a bidder token)", file=sys.stderr)
            return EXIT_USAGE
        return await notices(ns.ws_url, ns.token, json_lines=ns.json, count=ns.count)
    async with AsyncAuctionClient(ns.url, ns.token) as client:
        if ns.command == "items":
            return await _items(client, ns)
        if ns.command == "bid":
            result = await client.place_bid(
                ns.item_id, ns.amount, max_amount=ns.max_amount, idempotency_key=ns.idempotency_key
            )
            _out(ns.json, result, describe_bid(result, ns.max_amount))
            return EXIT_OK
        if ns.command == "buy":
            result = await client.buy_now(ns.item_id, idempotency_key=ns.idempotency_key)
            price = format_money(result.amount, result.item.currency)
            _out(
                ns.json,
                result,
                f"bought {result.item.id} for {price} (seq {result.seq}); the auction is closed",
            )
            return EXIT_OK
        if ns.command == "history":
            bids = []
            async for entry in client.iter_bids(ns.item_id):
                bids.append(entry)
                if len(bids) >= ns.limit:
                    break
            if ns.json:
                _print_json([b.model_dump(mode="json", by_alias=True) for b in bids])
            else:
                for b in bids:
                    print(f"{b.seq:>6}  {b.placed_at:%Y-%m-%d %H:%M:%S}  {b.bidder:<20} {b.amount}")
            return EXIT_OK
    return EXIT_USAGE


async def _items(client: AsyncAuctionClient, ns: argparse.Namespace) -> int:
    if ns.items_command == "create":
        item = await client.create_item(
            ns.title, description=ns.description, currency=ns.currency, starting_price=ns.starting_price,
            min_increment=ns.min_increment, starts_at=ns.starts_at, ends_at=ns.ends_at,
            increments=ns.increments, buy_now_price=ns.buy_now_price,
        )  # fmt: skip
        _out(
            ns.json,
            item,
            f"created {item.id}: {item.title} ({item.status.value}, ends {item.ends_at:%Y-%m-%d %H:%M:%SZ})",
        )
        return EXIT_OK
    if ns.items_command == "show":
        item = await client.get_item(ns.item_id)
        _out(ns.json, item, describe_item(item))
        return EXIT_OK
    found = []
    async for item in client.iter_items(status=ns.status, page_size=min(ns.limit, 200)):
        found.append(item)
        if len(found) >= ns.limit:
            break
    if ns.json:
        _print_json([i.model_dump(mode="json", by_alias=True) for i in found])
    else:
        for i in found:
            price = format_money(i.current_price, i.currency) if i.current_price is not None else "no bids"
            print(f"{i.id:<22} {i.status.value:<9} {price:>16}  {i.title}")
    return EXIT_OK


def describe_bid(result: BidResult, max_amount: int | None) -> str:
    """`auction bid`: what happened, and to the maximum's owner (only ever this caller) how far it goes."""
    item = result.item
    minimum = format_money(item.min_next_bid, item.currency)
    text = (
        f"accepted: bid {result.bid_id} (seq {result.seq}) of {format_money(result.amount, item.currency)}; "
        f"next minimum {minimum}"
    )
    if not result.leading:
        price = format_money(item.current_price or 0, item.currency)
        return text + f"\noutbid at once: the leader's maximum is higher; the price is now {price}"
    if max_amount is not None:
        return text + f"\nyou lead up to your maximum of {format_money(max_amount, item.currency)}"
    return text


def describe_item(item: Any) -> str:
    """`auction items show`: the item for people. Once closed: its result and no next minimum; the soft
    close rules and whether the reserve is met when the item has them."""
    result = result_of(item)
    closed = result is not None or item.status == Status.closed
    met = reserve_met_of(item)
    price = (
        format_money(item.current_price, item.currency) if item.current_price is not None else "no bids yet"
    )
    reserve = f" ({format_reserve(met)})" if met is not None else ""
    lines = [
        f"{item.title} ({item.id})",
        f"  status        {item.status.value}",
    ]
    if result is not None:
        closed_at = f" at {result.closed_at:%Y-%m-%d %H:%M:%SZ}" if result.closed_at is not None else ""
        lines.append(f"  result        {format_result(result, item.currency)}{closed_at}")
    elif closed:
        lines.append("  result        not recorded yet (closing)")
    lines.append(
        f"  current price {price}" + (f" by {item.highest_bidder}" if item.highest_bidder else "") + reserve
    )
    if not closed:
        lines.append(f"  next minimum  {format_money(item.min_next_bid, item.currency)}")
    reserve_price = reserve_price_of(item)
    if reserve_price is not None:
        lines.append(f"  reserve       {format_money(reserve_price, item.currency)}")
    lines += [
        f"  bids          {item.bid_count}",
        f"  window        {item.starts_at:%Y-%m-%d %H:%M:%SZ} .. {item.ends_at:%Y-%m-%d %H:%M:%SZ}",
    ]
    rules = soft_close_of(item)
    if rules is not None:
        lines.append(f"  soft close    {format_soft_close(rules)}")
    ladder = increments_of(item)
    if ladder:
        steps = ", ".join(
            f"{format_money(increment, item.currency)} from {format_money(start, item.currency)}"
            for start, increment in ladder
        )
        lines.append(f"  increments    {steps}")
    buy_now_price = buy_now_price_of(item)
    if buy_now_price is not None:
        if closed:
            state = "the auction is closed"
        elif item.bid_count:
            state = "gone: the item has a bid"
        elif item.status == Status.scheduled:
            state = "once the auction opens, until the first bid"
        else:
            state = f"available: auction buy {item.id}"
        lines.append(f"  buy now       {format_money(buy_now_price, item.currency)} ({state})")
    return "\n".join(lines)


def _out(as_json: bool, model: BaseModel, text: str) -> None:
    if as_json:
        _print_json(model.model_dump(mode="json", by_alias=True))
    else:
        print(text)


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _report(exc: AuctionError, as_json: bool) -> int:
    if as_json and isinstance(exc, ApiError):
        _print_json({"error": exc.problem})
    elif isinstance(exc, BidTooLow):
        print(f"refused: bid too low; the minimum next bid is {exc.min_next_bid}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    if isinstance(exc, Conflict | ValidationFailed):
        return EXIT_REFUSED
    if isinstance(exc, NotFound | LiveItemNotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Unauthorized | Forbidden | NoticeAuthError):
        return EXIT_AUTH
    if isinstance(exc, TransportError | ServerError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, ClientError):
        return EXIT_API
    return EXIT_API


if __name__ == "__main__":
    sys.exit(main())
