"""The JSON shapes of the REST API as pydantic models: request bodies (validated) and answers (documented).

Request models are strict: money is an integer (no numeric strings, booleans or fractions) within
0..10^15 (`auction_contract.rules.MAX_AMOUNT`), and unknown members are errors, so a body can never name
the bidder. "Integer" is JSON Schema's (2020-12, which OpenAPI 3.1 uses): any number with a zero
fractional part, so `100.0` and `1e2` are the integer 100, as the published document promises. Below the
bound every such number is exact in a double, so nothing is rounded; answers always carry plain
integers. Answer models only document; routes render answers with `convert` and orjson, which is several
times cheaper than validating outgoing data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from auction_contract.bid_rules import MAX_LADDER_STEPS, ladder_error
from auction_contract.rules import (
    CURRENCY_PATTERN,
    MAX_AMOUNT,
    MAX_DESCRIPTION,
    MAX_SOFT_CLOSE_SECONDS,
    MAX_TITLE,
    MIN_SOFT_CLOSE_SECONDS,
    TIME_WINDOW_TEXT,
    time_in_window,
)
from auction_contract.wire_time import datetime_ms

# The contract's text rule (`auction_contract.rules.safe_text`) as JSON Schema patterns, so the document
# says it: no control characters; a title is one line with something other than spaces in it.
_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
TITLE_PATTERN = f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"
DESCRIPTION_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"

# `Idempotency-Key`: 1..128 printable ASCII characters (the route's header declaration and the raw bid
# route's check both use these).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
IDEMPOTENCY_KEY_MAX_CHARS = 128
IdempotencyKeyText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_MAX_CHARS, pattern=IDEMPOTENCY_KEY_PATTERN),
]

ITEM_EXAMPLE: dict[str, Any] = {
    "id": "lot-42",
    "title": "Ming vase",
    "description": "Blue and white porcelain, 15th century.",
    "currency": "EUR",
    "status": "open",
    "starting_price": 100000,
    "min_increment": 5000,
    "current_price": 150000,
    "highest_bidder": "alice",
    "bid_count": 3,
    "min_next_bid": 155000,
    "starts_at": "2026-11-23T12:00:00.000Z",
    "ends_at": "2026-11-23T18:00:00.000Z",
    "seq": 4,
    "soft_close": {
        "window_seconds": 120,
        "extension_seconds": 120,
        "max_ends_at": "2026-11-23T19:00:00.000Z",
    },
    "result": None,
    "increments": [{"from": 0, "increment": 5000}, {"from": 500000, "increment": 10000}],
    "buy_now_price": 400000,
    "reserve_met": True,
}


_INTEGRAL = " Any JSON number with no fractional part (`100`, `100.0`, `1e2`); `100.5` is refused with 422."


def _integral(value: object) -> object:
    """An integral float (`100.0`, `1e2`) as the int it is; anything else unchanged for strict checks."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


_AS_INT = BeforeValidator(_integral)  # after the bounds in `Annotated`, so they stay int constraints

BID_REQUEST_EXAMPLE: dict[str, Any] = {"amount": 155000}
PROXY_BID_EXAMPLE: dict[str, Any] = {"max_amount": 200000}
BOTH_BID_EXAMPLE: dict[str, Any] = {"amount": 155000, "max_amount": 200000}
CREATE_ITEM_EXAMPLE: dict[str, Any] = {
    "title": "Ming vase",
    "description": "Blue and white porcelain, 15th century.",
    "currency": "EUR",
    "starting_price": 100000,
    "min_increment": 5000,
    "starts_at": "2098-11-23T12:00:00Z",
    "ends_at": "2098-11-23T18:00:00Z",
    "reserve_price": 120000,
    "soft_close": {"window_seconds": 120, "extension_seconds": 120, "max_ends_at": "2098-11-23T19:00:00Z"},
    "increments": [{"from": 0, "increment": 5000}, {"from": 500000, "increment": 10000}],
    "buy_now_price": 400000,
}


def _optional_money(description: str) -> WithJsonSchema:
    """One schema for an optional amount rather than pydantic's anyOf(integer, null), which the SDK's
    generator mishandles."""
    return WithJsonSchema(
        {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_AMOUNT, "description": description}
    )


class BidRequest(BaseModel):
    """Body of `POST /items/{id}/bid`: `amount`, `max_amount` or both; the bidder is the token's `sub`,
    never a body member.

    That one of them is given and `max_amount >= amount` are checked by the routes (`body.bid_terms`),
    only for the bodies that need it, so a plain bid's validation costs what it did before proxy bids.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"examples": [BID_REQUEST_EXAMPLE, PROXY_BID_EXAMPLE, BOTH_BID_EXAMPLE]},
    )

    amount: Annotated[
        int | None,
        Field(ge=1, le=MAX_AMOUNT),
        _AS_INT,
        _optional_money(
            "Bid exactly this, in minor units of the item's currency (cents); at least `min_next_bid`."
            + _INTEGRAL
        ),
    ] = None
    max_amount: Annotated[
        int | None,
        Field(ge=1, le=MAX_AMOUNT),
        _AS_INT,
        _optional_money(
            "A proxy bid: the platform bids for you, as others bid, up to this maximum (at least `amount`, "
            "and alone at least `min_next_bid`). Shown to no one but you: not in items, events, history "
            "or errors. Give `amount`, `max_amount` or both." + _INTEGRAL
        ),
    ] = None


class SoftCloseRequest(BaseModel):
    """Anti-sniping: a bid within `window_seconds` before the end moves it to at least its own time plus
    `extension_seconds`, never past `max_ends_at` (null: no cap)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    window_seconds: Annotated[
        int, Field(ge=MIN_SOFT_CLOSE_SECONDS, le=MAX_SOFT_CLOSE_SECONDS, description="1..86400."), _AS_INT
    ]
    extension_seconds: Annotated[
        int, Field(ge=MIN_SOFT_CLOSE_SECONDS, le=MAX_SOFT_CLOSE_SECONDS, description="1..86400."), _AS_INT
    ]
    max_ends_at: Annotated[
        AwareDatetime | None,
        Field(description=f"RFC 3339, after `ends_at`, {TIME_WINDOW_TEXT}; null: no cap."),
    ] = None


class IncrementStepRequest(BaseModel):
    """One step of an increment ladder: at prices from `from` on (up to the next step's), bids rise by
    `increment`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    from_price: Annotated[
        int,
        Field(alias="from", ge=0, le=MAX_AMOUNT, description="Minor units; the first step's is 0."),
        _AS_INT,
    ]
    increment: Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="Minor units."), _AS_INT]


def _create_item_schema(schema: dict[str, Any]) -> None:
    """The examples, and `increments` as one schema of type [array, null] rather than pydantic's
    anyOf(array, null), which the SDK's generator turns into a root model."""
    schema["examples"] = [CREATE_ITEM_EXAMPLE]
    ladder = schema["properties"]["increments"]
    array = next(option for option in ladder.pop("anyOf") if option.get("type") == "array")
    ladder.update(array, type=["array", "null"])


class CreateItemRequest(BaseModel):
    """Body of `POST /items` (admin)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=_create_item_schema)

    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE, pattern=TITLE_PATTERN)]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION, pattern=DESCRIPTION_PATTERN)] = ""
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN.pattern, description="ISO 4217 code.")]
    starting_price: Annotated[
        int, Field(ge=0, le=MAX_AMOUNT, description="Minor units." + _INTEGRAL), _AS_INT
    ]
    min_increment: Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="Minor units." + _INTEGRAL), _AS_INT]
    starts_at: Annotated[
        AwareDatetime | None,
        Field(description=f"RFC 3339, {TIME_WINDOW_TEXT}; omitted: the auction opens at once."),
    ] = None
    ends_at: Annotated[
        AwareDatetime,
        Field(description=f"RFC 3339, {TIME_WINDOW_TEXT}; after `starts_at` and in the future."),
    ]
    reserve_price: Annotated[
        int | None,
        Field(ge=0, le=MAX_AMOUNT),
        _AS_INT,
        # One schema rather than pydantic's anyOf(integer, null), which the SDK's generator mishandles.
        WithJsonSchema(
            {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": MAX_AMOUNT,
                "description": "Hidden (only admins read it), >= `starting_price`; below it: no sale.",
            }
        ),
    ] = None
    soft_close: SoftCloseRequest | None = None
    increments: Annotated[
        list[IncrementStepRequest] | None,
        Field(
            min_length=1,
            max_length=MAX_LADDER_STEPS,
            description="An increment ladder: the increment at price P is that of the step with the "
            "greatest `from <= P`. The first `from` is 0, `from` strictly rises, and `min_increment` "
            f"must be the first step's increment; at most {MAX_LADDER_STEPS} steps. Omitted: "
            "`min_increment` at every price.",
        ),
    ] = None
    buy_now_price: Annotated[
        int | None,
        Field(ge=1, le=MAX_AMOUNT),
        _AS_INT,
        WithJsonSchema(
            {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_AMOUNT,
                "description": "Buy-now (`POST /items/{id}/buy`) at this price until the first bid; above "
                "`starting_price`, at least `reserve_price`.",
            }
        ),
    ] = None

    @field_validator("increments")
    @classmethod
    def _ladder(
        cls, steps: list[IncrementStepRequest] | None, info: ValidationInfo
    ) -> list[IncrementStepRequest] | None:
        """The contract's ladder rules; the smallest increment given twice must be the same one."""
        if steps is None:
            return None
        error = ladder_error(tuple((step.from_price, step.increment) for step in steps))
        if error is not None:
            raise PydanticCustomError("invalid_increments", error)
        min_increment = info.data.get("min_increment")
        if min_increment is not None and min_increment != steps[0].increment:
            raise PydanticCustomError(
                "invalid_increments", "min_increment must be the first increments step's increment"
            )
        return steps

    @field_validator("buy_now_price")
    @classmethod
    def _buy_now(cls, price: int | None, info: ValidationInfo) -> int | None:
        """Above the starting price (else nobody would bid) and never a way round the reserve."""
        if price is None:
            return None
        starting_price = info.data.get("starting_price")
        if starting_price is not None and price <= starting_price:
            raise PydanticCustomError("invalid_buy_now_price", "buy_now_price must be above starting_price")
        reserve_price = info.data.get("reserve_price")
        if reserve_price is not None and price < reserve_price:
            raise PydanticCustomError("invalid_buy_now_price", "buy_now_price must be at least reserve_price")
        return price

    @model_validator(mode="after")
    def _lifecycle_rules(self) -> Self:
        """The reserve and the soft close cap, which depend on other members."""
        if self.reserve_price is not None and self.reserve_price < self.starting_price:
            raise ValueError("reserve_price must be at least starting_price")
        cap = self.soft_close.max_ends_at if self.soft_close is not None else None
        if cap is not None:
            if cap <= self.ends_at:
                raise ValueError("soft_close.max_ends_at must be after ends_at")
            if not time_in_window(datetime_ms(cap)):
                raise ValueError(f"soft_close.max_ends_at must be {TIME_WINDOW_TEXT}")
        return self

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_window(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        """Times every reader of the platform (the archive, the relay, JavaScript) can handle."""
        if moment is not None and not time_in_window(datetime_ms(moment)):
            raise ValueError(f"{info.field_name} must be {TIME_WINDOW_TEXT}")
        return moment

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        """An auction must end after it starts and after now, or it could never take a bid."""
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        if ends_at <= datetime.now(UTC):
            raise ValueError("ends_at must be in the future")
        return ends_at


class IncrementStep(BaseModel):
    from_price: int = Field(alias="from", description="From this price on (up to the next step's).")
    increment: int


class SoftClose(BaseModel):
    window_seconds: int
    extension_seconds: int
    max_ends_at: datetime | None


class AuctionResult(BaseModel):
    """How the auction ended: sold to the highest bidder at the current price, or no sale (no bid, or the
    reserve not met)."""

    outcome: Literal["sold", "no_sale"]
    winner: str | None
    final_price: int | None
    closed_at: datetime


class Item(BaseModel):
    """An item and the state of its auction. Times are RFC 3339 UTC with milliseconds."""

    model_config = ConfigDict(json_schema_extra={"examples": [ITEM_EXAMPLE]})

    id: str
    title: str
    description: str
    currency: str
    status: Literal["scheduled", "open", "closed"]
    starting_price: int
    min_increment: int
    current_price: int | None = Field(description="Null before the first accepted bid.")
    highest_bidder: str | None = Field(description="Null before the first accepted bid.")
    bid_count: int
    min_next_bid: int = Field(
        description="starting_price before the first bid, then current_price + the increment at "
        "current_price (the ladder's, or min_increment)."
    )
    starts_at: datetime
    ends_at: datetime = Field(description="The effective end: later bids in a soft close window move it.")
    seq: int = Field(description="The seq of the item's latest event (1 = created).")
    soft_close: SoftClose | None = Field(default=None, description="Null for a hard end.")
    result: AuctionResult | None = Field(
        default=None, description="Null until the close, then its one result."
    )
    reserve_met: bool | None = Field(
        default=None, description="Whether the price meets the reserve; absent when there is none."
    )
    reserve_price: int | None = Field(
        default=None, description="The hidden reserve: in answers to admins only."
    )
    increments: list[IncrementStep] | None = Field(
        default=None, description="The increment ladder as created; absent without one."
    )
    buy_now_price: int | None = Field(
        default=None,
        description="Absent when the item offers no buy-now. Shown whenever it has one, since it is a term "
        "of the item; `POST /items/{id}/buy` takes it while `status` is open and `bid_count` is 0.",
    )


class ItemList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [ITEM_EXAMPLE], "next_cursor": None}]}
    )

    items: list[Item]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class BidResult(BaseModel):
    """An accepted bid or buy-now (or the replay of the first answer for a repeated `Idempotency-Key`).

    A maximum is never in it: the caller knows what they sent, and the answer is the same for every
    body a key can replay."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"bid_id": "b-9f2c", "seq": 4, "amount": 150000, "leading": True, "item": ITEM_EXAMPLE}
            ]
        }
    )

    bid_id: str = Field(
        description="The bid's own event; for a bid that placed none (a leader raising their maximum, a "
        "maximum beaten at once by the leader's) the item's seq right after it."
    )
    seq: int
    amount: int = Field(description="The bid's own amount; the price when it placed none.")
    leading: bool = Field(
        description="Whether the caller leads after it (false: a maximum beaten at once by the leader's)."
    )
    item: Item


class Bid(BaseModel):
    bid_id: str
    seq: int
    bidder: str
    amount: int
    placed_at: datetime


class BidsPage(BaseModel):
    """Accepted bids, newest first, from the archive."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "bids": [
                        {
                            "bid_id": "b-9f2c",
                            "seq": 4,
                            "bidder": "alice",
                            "amount": 150000,
                            "placed_at": "2026-11-23T12:03:10.250Z",
                        }
                    ],
                    "next_before_seq": None,
                }
            ]
        }
    )

    bids: list[Bid]
    next_before_seq: int | None = Field(description="Pass as `before_seq` for older bids; null when none.")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; some types add members (`min_next_bid`, `errors`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Stable slug, e.g. `bid-too-low`.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    min_next_bid: int | None = Field(default=None, description="With `bid-too-low` only.")
    errors: list[FieldError] | None = Field(default=None, description="With `validation-error` only.")


class Health(BaseModel):
    status: str
