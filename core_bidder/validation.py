"""Input checks shared by both write strategies; they raise `InvalidArgument` before any Redis call."""

from __future__ import annotations

from auction_contract.rules import (
    BIDDER_PATTERN,
    CURRENCY_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_AMOUNT,
    MAX_DESCRIPTION,
    MAX_TITLE,
    TIME_WINDOW_TEXT,
    is_item_id,
    safe_text,
    time_in_window,
)
from core_bidder.errors import InvalidArgument

check_item_id = is_item_id


def check_bid(bidder: str, amount: int, idempotency_key: str) -> None:
    if not BIDDER_PATTERN.fullmatch(bidder):
        raise InvalidArgument("bidder must be 1..64 of [A-Za-z0-9_.@-]")
    if not 0 < amount <= MAX_AMOUNT:
        raise InvalidArgument(f"amount must be between 1 and {MAX_AMOUNT} minor units")
    if idempotency_key and not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
        raise InvalidArgument("idempotency key must be 1..128 printable ASCII characters")


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
