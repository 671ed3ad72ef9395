"""OpenAPI helpers: documented problem responses, raw-body request schemas, and the final document.

Routes parse their bodies themselves (see `body.py`), so FastAPI does not see the request models; they
are declared through `openapi_extra` and their schemas added to the components here. Problem responses
are documented under `application/problem+json` (not FastAPI's default `application/json`), with one
example per problem type a route can answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from edge_gateway.problems import PROBLEM_MEDIA_TYPE, TITLES
from edge_gateway.schemas import BidRequest, CreateItemRequest, Problem

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.json_schema import JsonSchemaMode

_REF = "#/components/schemas/{model}"

# status -> (description, [(type slug, detail, extension members)])
_PROBLEMS: dict[int, tuple[str, list[tuple[str, str, dict[str, Any]]]]] = {
    401: (
        "Missing, malformed or expired bearer token.",
        [("unauthorized", "the token has expired", {})],
    ),
    403: (
        "The token's role may not do this.",
        [("forbidden", "creating items needs an admin token", {})],
    ),
    404: ("No such item.", [("item-not-found", "no item with id 'lot-404'", {})]),
    409: (
        "The auction's state refuses the request.",
        [
            ("bid-too-low", "the minimum next bid is 155000", {"min_next_bid": 155000}),
            ("auction-not-open", "the auction has not started yet", {}),
            ("auction-closed", "the auction has ended", {}),
            (
                "buy-now-unavailable",
                "this item cannot be bought now: it has no buy-now price, or it has a bid already",
                {},
            ),
        ],
    ),
    413: (
        "The body is larger than the limit.",
        [("payload-too-large", "the request body exceeds 16384 bytes", {})],
    ),
    414: (
        "The request target is longer than the server's head limit (answered before any route; the "
        "connection is closed).",
        [("uri-too-long", "the request target exceeds 16384 bytes", {})],
    ),
    415: (
        "The body is not application/json.",
        [("unsupported-media-type", "send the body as application/json (UTF-8)", {})],
    ),
    422: (
        "The request is not valid.",
        [
            (
                "validation-error",
                "1 field error in the request: body.amount: Input should be a valid integer",
                {
                    "errors": [
                        {
                            "loc": ["body", "amount"],
                            "msg": "Input should be a valid integer",
                            "type": "int_type",
                        }
                    ]
                },
            ),
            ("idempotency-key-reused", "this Idempotency-Key was already used with a different request", {}),
        ],
    ),
    431: (
        "The request head (target and header fields) is larger than the server's limit (answered "
        "before any route; the connection is closed).",
        [("header-fields-too-large", "the request head exceeds 16384 bytes", {})],
    ),
    429: (
        "Too many requests: per bidder on writes, per client address on reads and on failed "
        "authentications; see `Retry-After`.",
        [("rate-limited", "too many requests; retry in 1 s", {})],
    ),
    503: (
        "A service behind the gateway is unavailable; see `Retry-After`.",
        [
            ("unavailable", "the service is temporarily unavailable; retry shortly", {}),
            ("not-ready", "the bidder is not serving", {}),
        ],
    ),
}
# Examples shown only where a route names them in `only`.
_OPT_IN = frozenset({"not-ready"})
_RETRY_AFTER = {
    "Retry-After": {"description": "Whole seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}
_PROBLEM_REF = {"$ref": _REF.format(model="Problem")}


def problem_responses(
    *statuses: int, exclude: tuple[str, ...] = (), include: tuple[str, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the problem schema and examples.

    Every problem type of each status is shown, except the opt-in ones unless named in `include`, and
    those named in `exclude` (e.g. a GET cannot answer `idempotency-key-reused`).
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, kinds = _PROBLEMS[status]
        examples = {
            slug: {
                "summary": TITLES[slug],
                "value": {"type": slug, "title": TITLES[slug], "status": status, "detail": detail, **extra},
            }
            for slug, detail, extra in kinds
            if (slug not in _OPT_IN or slug in include) and slug not in exclude
        }
        entry: dict[str, Any] = {
            "description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF, "examples": examples}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        elif status == 401:
            entry["headers"] = _WWW_AUTHENTICATE
        responses[status] = entry
    return responses


def json_body(model: type[BaseModel], *examples: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra=` declaring `model` as the required `application/json` body."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=model.__name__)},
                    "examples": {f"example{i + 1}": {"value": value} for i, value in enumerate(examples)},
                }
            },
        }
    }


_VALIDATION_RESPONSE = problem_responses(422, exclude=("idempotency-key-reused",))[422]
_EXTRA_SCHEMAS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (BidRequest, "validation"),
    (CreateItemRequest, "validation"),
    (Problem, "serialization"),
)


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def install_openapi(app: FastAPI) -> None:
    """Generate the document once, then finish it.

    Adds the schemas only referenced through `openapi_extra`, replaces the 422 that FastAPI
    documents for every route with parameters (its own `HTTPValidationError` shape, which this app
    never sends) by the `validation-error` problem, and documents on every operation the 414 and 431
    that the server's protocol answers for an oversized request head.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            head_limits = problem_responses(414, 431)
            for path_item in document.get("paths", {}).values():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    if _is_fastapi_422(responses.get("422")):
                        responses["422"] = _VALIDATION_RESPONSE
                    # The HTTP server's protocol answers an oversized head before any route.
                    for status, entry in head_limits.items():
                        responses.setdefault(str(status), entry)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            for model, mode in _EXTRA_SCHEMAS:
                schema = model.model_json_schema(ref_template=_REF, mode=mode)
                for name, definition in schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas[model.__name__] = schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
