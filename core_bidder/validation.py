"""Input checks shared by both write strategies; they raise `InvalidArgument` before any Redis call."""

from __future__ import annotations

from auction_contract.bid_rules import Ladder, ladder_error
from auction_contract.rules import (
    BIDDER_PATTERN,
    CURRENCY_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_AMOUNT,
    MAX_DESCRIPTION,
    MAX_SOFT_CLOSE_SECONDS,
    MAX_TITLE,
    MIN_SOFT_CLOSE_SECONDS,
    TIME_WINDOW_TEXT,
    SoftCloseRule,
    is_item_id,
    safe_text,
    time_in_window,
)
from core_bidder.errors import InvalidArgument

check_item_id = is_item_id


def check_bid(bidder: str, amount: int, idempotency_key: str, max_amount: int | None = None) -> None:
    """`amount` 0 is "none", allowed only with a `max_amount`. The messages never repeat a maximum."""
    check_bidder(bidder)
    if (max_amount is None or amount) and not 0 < amount <= MAX_AMOUNT:
        raise InvalidArgument(f"amount must be between 1 and {MAX_AMOUNT} minor units")
    if max_amount is not None:
        if not 0 < max_amount <= MAX_AMOUNT:
            raise InvalidArgument(f"max_amount must be between 1 and {MAX_AMOUNT} minor units")
        if max_amount < amount:
            raise InvalidArgument("max_amount must be at least amount")
    check_idempotency_key(idempotency_key)


def check_idempotency_key(idempotency_key: str) -> None:
    if idempotency_key and not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidArgument("idempotency key must be 1..128 printable ASCII characters")


def check_bidder(bidder: str) -> None:
    if not BIDDER_PATTERN.fullmatch(bidder):
        raise InvalidArgument("bidder must be 1..64 of [A-Za-z0-9_.@-]")


def bid_kinds(
    steps: Ladder,
    min_increment: int,
    starting_price: int,
    reserve_price: int | None,
    buy_now_price: int | None,
) -> tuple[Ladder | None, int]:
    """The checked ladder (None without one) and the item's min_increment (the first step's with one).

    With a ladder, `min_increment` may be 0 (then it is taken from the ladder) or that same first step's
    increment: two different "smallest increments" would be a contradiction the item would carry."""
    ladder: Ladder | None = None
    if steps:
        error = ladder_error(steps)
        if error is not None:
            raise InvalidArgument(error)
        if min_increment not in (0, steps[0][1]):
            raise InvalidArgument("min_increment must be 0 or the first increments step's increment")
        ladder, min_increment = steps, steps[0][1]
    if buy_now_price is not None:
        if not starting_price < buy_now_price <= MAX_AMOUNT:
            raise InvalidArgument(f"buy_now_price must be above starting_price and at most {MAX_AMOUNT}")
        if reserve_price is not None and buy_now_price < reserve_price:
            raise InvalidArgument("buy_now_price must be at least reserve_price")
    return ladder, min_increment


def check_new_item(
    title: str, description: str, currency: str, starting_price: int, min_increment: int
) -> None:
    if not 0 < len(title.strip()) <= MAX_TITLE:
        raise InvalidArgument(f"title must be 1..{MAX_TITLE} characters")
    if not safe_text(title, multiline=False):
        raise InvalidArgument("title must not contain control characters")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION} characters")
    if not safe_text(description, multiline=True):
        raise InvalidArgument(
            "description must not contain control characters other than tabs and line breaks"
        )
    if not CURRENCY_PATTERN.fullmatch(currency):
        raise InvalidArgument("currency must be an ISO 4217 code (3 upper-case letters)")
    if not 0 <= starting_price <= MAX_AMOUNT:
        raise InvalidArgument(f"starting_price must be between 0 and {MAX_AMOUNT}")
    if not 0 < min_increment <= MAX_AMOUNT:
        raise InvalidArgument(f"min_increment must be between 1 and {MAX_AMOUNT}")


def check_times(starts_ms: int | None, ends_ms: int) -> None:
    """Both times inside the window every reader of the platform handles (`TIME_WINDOW_TEXT`)."""
    for name, value in (("starts_at", starts_ms), ("ends_at", ends_ms)):
        if value is not None and not time_in_window(value):
            raise InvalidArgument(f"{name} must be {TIME_WINDOW_TEXT}")


def check_reserve(reserve_price: int | None, starting_price: int) -> None:
    if reserve_price is not None and not starting_price <= reserve_price <= MAX_AMOUNT:
        raise InvalidArgument(f"reserve_price must be between starting_price and {MAX_AMOUNT}")


def soft_close_rule(
    window_seconds: int, extension_seconds: int, max_ends_ms: int | None, ends_ms: int
) -> SoftCloseRule:
    """The checked rule: window and extension within the contract's bounds, the cap after the end."""
    bounds = f"{MIN_SOFT_CLOSE_SECONDS}..{MAX_SOFT_CLOSE_SECONDS}"
    if not MIN_SOFT_CLOSE_SECONDS <= window_seconds <= MAX_SOFT_CLOSE_SECONDS:
        raise InvalidArgument(f"soft_close.window_seconds must be {bounds}")
    if not MIN_SOFT_CLOSE_SECONDS <= extension_seconds <= MAX_SOFT_CLOSE_SECONDS:
        raise InvalidArgument(f"soft_close.extension_seconds must be {bounds}")
    if max_ends_ms is not None:
        if not time_in_window(max_ends_ms):
            raise InvalidArgument(f"soft_close.max_ends_at must be {TIME_WINDOW_TEXT}")
        if max_ends_ms <= ends_ms:
            raise InvalidArgument("soft_close.max_ends_at must be after ends_at")
    return SoftCloseRule(window_seconds * 1000, extension_seconds * 1000, max_ends_ms)
