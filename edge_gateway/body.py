"""Reading a JSON request body into a strict pydantic model, with the gateway's own error answers.

Routes read the raw bytes and call `model_validate_json` instead of declaring a body parameter:
FastAPI would decode with the stdlib `json` and then validate Python objects, about three times the
cost (measured: 3.8 µs against 1.3 µs for a bid body), and would not answer a wrong content type with
415. Invalid JSON is a 422 `validation-error` like any other invalid body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from edge_gateway.problems import unsupported_media_type, validation_problem

if TYPE_CHECKING:
    from starlette.requests import Request

M = TypeVar("M", bound=BaseModel)
_BODY_LOC = ("body",)
_NO_TERMS = {"loc": ["body"], "msg": "give amount, max_amount or both", "type": "missing"}
_MAX_BELOW_AMOUNT = {
    "loc": ["body", "max_amount"],
    "msg": "max_amount must be at least amount",
    "type": "value_error",
}


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json`, optionally with `charset=utf-8` (JSON is UTF-8 by RFC 8259)."""
    if content_type is None:
        return False
    if content_type == "application/json":
        return True
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


async def read_json(request: Request, model: type[M]) -> M:
    """The request body as `model`, or a 415 / 413 / 422 problem."""
    if not is_json_media_type(request.headers.get("content-type")):
        raise unsupported_media_type()
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise validation_problem(errors, _BODY_LOC) from None


def bid_terms(amount: int | None, max_amount: int | None) -> int:
    """The bid's `amount` as the bidder takes it (0: none, a maximum alone), or the 422 for terms that
    JSON Schema cannot state. Routes call it only when `max_amount` is given or `amount` is not, so a
    plain bid skips it."""
    if max_amount is None:
        if amount is None:
            raise validation_problem([_NO_TERMS])
        return amount
    if amount is None:
        return 0
    if max_amount < amount:
        raise validation_problem([_MAX_BELOW_AMOUNT])
    return amount
