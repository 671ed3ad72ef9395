# Generated from clients/openapi.json by clients/generate_models.py. DO NOT EDIT.

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    sold = 'sold'
    no_sale = 'no_sale'


class AuctionResult(BaseModel):
    closed_at: Annotated[AwareDatetime, Field(title='Closed At')]
    final_price: Annotated[int | None, Field(title='Final Price')]
    outcome: Annotated[Outcome, Field(title='Outcome')]
    winner: Annotated[str | None, Field(title='Winner')]


class Bid(BaseModel):
    amount: Annotated[int, Field(title='Amount')]
    bid_id: Annotated[str, Field(title='Bid Id')]
    bidder: Annotated[str, Field(title='Bidder')]
    placed_at: Annotated[AwareDatetime, Field(title='Placed At')]
    seq: Annotated[int, Field(title='Seq')]


class BidRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    amount: Annotated[
        int | None,
        Field(
            description="Bid exactly this, in minor units of the item's currency (cents); at least `min_next_bid`. Any JSON number with no fractional part (`100`, `100.0`, `1e2`); `100.5` is refused with 422.",
            ge=1,
            le=1000000000000000,
            title='Amount',
        ),
    ] = None
    max_amount: Annotated[
        int | None,
        Field(
            description='A proxy bid: the platform bids for you, as others bid, up to this maximum (at least `amount`, and alone at least `min_next_bid`). Shown to no one but you: not in items, events, history or errors. Give `amount`, `max_amount` or both. Any JSON number with no fractional part (`100`, `100.0`, `1e2`); `100.5` is refused with 422.',
            ge=1,
            le=1000000000000000,
            title='Max Amount',
        ),
    ] = None


class BidsPage(BaseModel):
    bids: Annotated[list[Bid], Field(title='Bids')]
    next_before_seq: Annotated[
        int | None,
        Field(description='Pass as `before_seq` for older bids; null when none.', title='Next Before Seq'),
    ]


class FieldError(BaseModel):
    loc: Annotated[list[str | int], Field(title='Loc')]
    msg: Annotated[str, Field(title='Msg')]
    type: Annotated[str, Field(title='Type')]


class Health(BaseModel):
    status: Annotated[str, Field(title='Status')]


class IncrementStep(BaseModel):
    from_: Annotated[
        int, Field(alias='from', description="From this price on (up to the next step's).", title='From')
    ]
    increment: Annotated[int, Field(title='Increment')]


class IncrementStepRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    from_: Annotated[
        int,
        Field(
            alias='from',
            description="Minor units; the first step's is 0.",
            ge=0,
            le=1000000000000000,
            title='From',
        ),
    ]
    increment: Annotated[int, Field(description='Minor units.', ge=1, le=1000000000000000, title='Increment')]


class Status(StrEnum):
    scheduled = 'scheduled'
    open = 'open'
    closed = 'closed'


class Problem(BaseModel):
    model_config = ConfigDict(
        extra='allow',
    )
    detail: Annotated[str, Field(title='Detail')]
    errors: Annotated[
        list[FieldError] | None, Field(description='With `validation-error` only.', title='Errors')
    ] = None
    instance: Annotated[str | None, Field(title='Instance')] = None
    min_next_bid: Annotated[
        int | None, Field(description='With `bid-too-low` only.', title='Min Next Bid')
    ] = None
    status: Annotated[int, Field(title='Status')]
    title: Annotated[str, Field(title='Title')]
    type: Annotated[str, Field(description='Stable slug, e.g. `bid-too-low`.', title='Type')]


class SoftClose(BaseModel):
    extension_seconds: Annotated[int, Field(title='Extension Seconds')]
    max_ends_at: Annotated[AwareDatetime | None, Field(title='Max Ends At')]
    window_seconds: Annotated[int, Field(title='Window Seconds')]


class SoftCloseRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    extension_seconds: Annotated[
        int, Field(description='1..86400.', ge=1, le=86400, title='Extension Seconds')
    ]
    max_ends_at: Annotated[
        AwareDatetime | None,
        Field(
            description='RFC 3339, after `ends_at`, between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z; null: no cap.',
            title='Max Ends At',
        ),
    ] = None
    window_seconds: Annotated[int, Field(description='1..86400.', ge=1, le=86400, title='Window Seconds')]


class CreateItemRequest(BaseModel):
    model_config = ConfigDict(
        extra='forbid',
    )
    buy_now_price: Annotated[
        int | None,
        Field(
            description='Buy-now (`POST /items/{id}/buy`) at this price until the first bid; above `starting_price`, at least `reserve_price`.',
            ge=1,
            le=1000000000000000,
            title='Buy Now Price',
        ),
    ] = None
    currency: Annotated[str, Field(description='ISO 4217 code.', pattern='^[A-Z]{3}$', title='Currency')]
    description: Annotated[
        str | None,
        Field(
            max_length=5000, pattern='^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$', title='Description'
        ),
    ] = ''
    ends_at: Annotated[
        AwareDatetime,
        Field(
            description='RFC 3339, between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z; after `starts_at` and in the future.',
            title='Ends At',
        ),
    ]
    increments: Annotated[
        list[IncrementStepRequest] | None,
        Field(
            description="An increment ladder: the increment at price P is that of the step with the greatest `from <= P`. The first `from` is 0, `from` strictly rises, and `min_increment` must be the first step's increment; at most 32 steps. Omitted: `min_increment` at every price.",
            max_length=32,
            min_length=1,
            title='Increments',
        ),
    ] = None
    min_increment: Annotated[
        int,
        Field(
            description='Minor units. Any JSON number with no fractional part (`100`, `100.0`, `1e2`); `100.5` is refused with 422.',
            ge=1,
            le=1000000000000000,
            title='Min Increment',
        ),
    ]
    reserve_price: Annotated[
        int | None,
        Field(
            description='Hidden (only admins read it), >= `starting_price`; below it: no sale.',
            ge=0,
            le=1000000000000000,
            title='Reserve Price',
        ),
    ] = None
    soft_close: SoftCloseRequest | None = None
    starting_price: Annotated[
        int,
        Field(
            description='Minor units. Any JSON number with no fractional part (`100`, `100.0`, `1e2`); `100.5` is refused with 422.',
            ge=0,
            le=1000000000000000,
            title='Starting Price',
        ),
    ]
    starts_at: Annotated[
        AwareDatetime | None,
        Field(
            description='RFC 3339, between 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z; omitted: the auction opens at once.',
            title='Starts At',
        ),
    ] = None
    title: Annotated[
        str,
        Field(
            max_length=200,
            min_length=1,
            pattern='^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$',
            title='Title',
        ),
    ]


class Item(BaseModel):
    bid_count: Annotated[int, Field(title='Bid Count')]
    buy_now_price: Annotated[
        int | None,
        Field(
            description='Absent when the item offers no buy-now. Shown whenever it has one, since it is a term of the item; `POST /items/{id}/buy` takes it while `status` is open and `bid_count` is 0.',
            title='Buy Now Price',
        ),
    ] = None
    currency: Annotated[str, Field(title='Currency')]
    current_price: Annotated[
        int | None, Field(description='Null before the first accepted bid.', title='Current Price')
    ]
    description: Annotated[str, Field(title='Description')]
    ends_at: Annotated[
        AwareDatetime,
        Field(description='The effective end: later bids in a soft close window move it.', title='Ends At'),
    ]
    highest_bidder: Annotated[
        str | None, Field(description='Null before the first accepted bid.', title='Highest Bidder')
    ]
    id: Annotated[str, Field(title='Id')]
    increments: Annotated[
        list[IncrementStep] | None,
        Field(description='The increment ladder as created; absent without one.', title='Increments'),
    ] = None
    min_increment: Annotated[int, Field(title='Min Increment')]
    min_next_bid: Annotated[
        int,
        Field(
            description="starting_price before the first bid, then current_price + the increment at current_price (the ladder's, or min_increment).",
            title='Min Next Bid',
        ),
    ]
    reserve_met: Annotated[
        bool | None,
        Field(
            description='Whether the price meets the reserve; absent when there is none.', title='Reserve Met'
        ),
    ] = None
    reserve_price: Annotated[
        int | None, Field(description='The hidden reserve: in answers to admins only.', title='Reserve Price')
    ] = None
    result: Annotated[
        AuctionResult | None, Field(description='Null until the close, then its one result.')
    ] = None
    seq: Annotated[int, Field(description="The seq of the item's latest event (1 = created).", title='Seq')]
    soft_close: Annotated[SoftClose | None, Field(description='Null for a hard end.')] = None
    starting_price: Annotated[int, Field(title='Starting Price')]
    starts_at: Annotated[AwareDatetime, Field(title='Starts At')]
    status: Annotated[Status, Field(title='Status')]
    title: Annotated[str, Field(title='Title')]


class ItemList(BaseModel):
    items: Annotated[list[Item], Field(title='Items')]
    next_cursor: Annotated[
        str | None,
        Field(description='Pass as `cursor` for the next page; null on the last.', title='Next Cursor'),
    ]


class BidResult(BaseModel):
    amount: Annotated[
        int, Field(description="The bid's own amount; the price when it placed none.", title='Amount')
    ]
    bid_id: Annotated[
        str,
        Field(
            description="The bid's own event; for a bid that placed none (a leader raising their maximum, a maximum beaten at once by the leader's) the item's seq right after it.",
            title='Bid Id',
        ),
    ]
    item: Item
    leading: Annotated[
        bool,
        Field(
            description="Whether the caller leads after it (false: a maximum beaten at once by the leader's).",
            title='Leading',
        ),
    ]
    seq: Annotated[int, Field(title='Seq')]
