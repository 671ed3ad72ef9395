"""JSON answers rendered with orjson.

FastAPI 0.163 deprecates its `ORJSONResponse` (it now prefers pydantic's serializer for declared
response models), and a deprecation warning is an error in our test runs. The gateway's routes hand
over ready dicts rather than models, for which orjson remains the fastest encoder, so it keeps its
own small class and a helper that skips `JSONResponse`'s extra render step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

JSON_MEDIA_TYPE = "application/json"


class OrjsonResponse(JSONResponse):
    """The app's default response class."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON `Response` from plain data (dicts, lists, str, int, None)."""
    return Response(
        orjson.dumps(content), status_code=status_code, headers=headers, media_type=JSON_MEDIA_TYPE
    )
