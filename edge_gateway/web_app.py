"""The web page people bid with, served by the edge under `/app/`: the files in `web/` as they are.

No build step and nothing from elsewhere: plain JavaScript modules and one style sheet, read once when
the app is built and kept in memory (a few tens of KB), so serving them costs no disk access.

- `GET /app/` (the item list) and `GET /app/<file>`: the page's files. Every answer under `/app/` carries
  the page's Content-Security-Policy: scripts, styles and fetches from this origin only, WebSockets to
  the fan-out's public origin only (`EDGE_FANOUT_PUBLIC_URL`), no inline script, no framing, no form
  posting elsewhere. So an injected `<script>` does not run and a stolen token cannot be sent anywhere
  the policy does not name. The edge's own headers (`nosniff`, `no-store`) come on top, from
  `http_semantics`, as on every answer.
- `GET /app/config.json`: what the page cannot know by itself: where the fan-out is, and whether the
  development token endpoint is on.
- `POST /app/dev-token` `{"sub", "role"}`: a bearer token for the local stack, signed with the edge's
  own HS256 secret and living at most an hour, so trying the page needs no terminal. Only with
  `EDGE_ENVIRONMENT=local` (and HS256, the only algorithm the edge can sign with); anywhere else it
  answers 404 problem+json, the same answer as a path that does not exist, and mints nothing.

None of these routes is in the OpenAPI document: they are not the REST API, and the SDK generated from
that document must not change because of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import jwt
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auction_contract.wire_time import rfc3339_ms
from edge_gateway.auth import SUB_PATTERN
from edge_gateway.body import read_json
from edge_gateway.problems import ProblemError
from edge_gateway.responses import json_response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from edge_gateway.settings import EdgeSettings

PREFIX = "/app"
WEB_DIR = Path(__file__).with_name("web")
DEV_TOKEN_TTL_SECONDS = 3600
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class DevTokenRequest(BaseModel):
    """Body of `POST /app/dev-token`: who the token is for. Its lifetime is the server's to choose."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    sub: Annotated[str, Field(pattern=f"^{SUB_PATTERN.pattern}$")]
    role: Literal["bidder", "admin"] = "bidder"


@dataclass(frozen=True, slots=True)
class WebFile:
    body: bytes
    media_type: str


def load_files(directory: Path = WEB_DIR) -> dict[str, WebFile]:
    """Every servable file of `directory` by name (HTML, JavaScript, CSS; nothing else, no subfolders)."""
    files: dict[str, WebFile] = {}
    for path in sorted(directory.iterdir()):
        media_type = _MEDIA_TYPES.get(path.suffix)
        if media_type is not None and path.is_file():
            files[path.name] = WebFile(path.read_bytes(), media_type)
    return files


def content_security_policy(fanout_url: str) -> str:
    """The page's policy: this origin for everything it loads, plus WebSockets to the fan-out."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {fanout_url}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def page_headers(settings: EdgeSettings) -> dict[str, str]:
    """Headers of every answer under `/app/` (see the module docstring)."""
    return {
        "Content-Security-Policy": content_security_policy(settings.fanout_public_url),
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def dev_tokens_enabled(settings: EdgeSettings) -> bool:
    """Only a local edge that signs with a shared secret may hand out tokens."""
    return settings.environment == "local" and settings.jwt_algorithm == "HS256"


def mint_dev_token(settings: EdgeSettings, sub: str, role: str, now: float | None = None) -> tuple[str, int]:
    """A token the edge's own verifier accepts (issuer and audience included when configured), and its
    `exp`; it lives an hour, or less when the edge accepts only shorter-lived tokens."""
    issued = int(time.time() if now is None else now)
    expires = issued + min(DEV_TOKEN_TTL_SECONDS, settings.max_token_lifetime_seconds)
    claims: dict[str, str | int] = {"sub": sub, "role": role, "iat": issued, "exp": expires}
    if settings.jwt_issuer is not None:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience is not None:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.secret, algorithm="HS256"), expires


def _not_found() -> ProblemError:
    """The answer of an unknown path (`problems._HTTP_SLUGS`), so a disabled route looks like none."""
    return ProblemError(404, "not-found", "no route matches this path")


def web_router(settings: EdgeSettings, files: Mapping[str, WebFile] | None = None) -> APIRouter:
    """The `/app/` routes for `settings`, serving `files` (default: `web/`, read now)."""
    served = load_files() if files is None else dict(files)
    headers = page_headers(settings)
    config = {"fanout_url": settings.fanout_public_url, "dev_tokens": dev_tokens_enabled(settings)}
    router = APIRouter(include_in_schema=False)

    def file_response(name: str) -> Response:
        found = served.get(name)
        if found is None:
            raise _not_found()
        return Response(found.body, media_type=found.media_type, headers=headers)

    @router.get(PREFIX)
    async def app_root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=308, headers=headers)

    @router.get(f"{PREFIX}/")
    async def app_index() -> Response:
        return file_response("index.html")

    @router.get(f"{PREFIX}/config.json")
    async def app_config() -> Response:
        return json_response(config, headers=headers)

    @router.post(f"{PREFIX}/dev-token")
    async def app_dev_token(request: Request) -> Response:
        if not dev_tokens_enabled(settings):
            raise _not_found()
        body = await read_json(request, DevTokenRequest)
        token, expires = mint_dev_token(settings, body.sub, body.role)
        answer = {
            "token": token,
            "sub": body.sub,
            "role": body.role,
            "expires_at": rfc3339_ms(expires * 1000),
        }
        return json_response(answer, 201, headers)

    @router.get(PREFIX + "/{name}")
    async def app_file(name: str) -> Response:
        return file_response(name)

    return router
